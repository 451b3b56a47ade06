"""The real `netkit udp-echo` process: serve and send, JSON and human output, exit codes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess

import pytest

from tests.helpers import NETKIT, Server, env, read_line, run


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_json_and_send() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json") as srv:
        assert srv.listening == {
            "event": "listening",
            "host": "127.0.0.1",
            "port": srv.port,
            "transport": "udp",
        }
        res = run("udp-echo", "send", "--port", str(srv.port), "hello", "wörld")
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().splitlines() == ["HELLO", "WöRLD"]
        ev = srv.next_event()
        assert ev["event"] == "datagram" and ev["size"] == 5 and ev["text"] == "hello"
        assert ev["peer"].startswith("127.0.0.1:")
        srv.next_event()
        code, out, err = srv.stop(signal.SIGINT)
    assert code == 0, err
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["event"] == "summary" and summary["reason"] == "stopped by SIGINT"
    assert summary["counts"] == {"received": 2, "replied": 2}


def test_send_stdin_json_and_ipv6() -> None:
    with Server("udp-echo", "serve", "--host", "::1", "--port", "0", "--plain", "--json") as srv:
        assert srv.host == "::1"
        res = run(
            "udp-echo", "send", "--host", f"[::1]:{srv.port}", "--json", "-", input=b"a\nb\xff\n"
        )
        assert res.returncode == 0, res.stderr
        replies = [json.loads(line) for line in res.stdout.decode().splitlines()]
        assert [r["event"] for r in replies] == ["reply", "reply"]
        assert replies[0]["text"] == "a" and replies[0]["peer"] == f"[::1]:{srv.port}"
        assert replies[1]["data_b64"] == "Yv8="  # the exact bytes b"b\xff"
        code, _out, _err = srv.stop()
    assert code == 0


def test_serve_count_exits_zero() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json", "--count", "1", "--quiet") as srv:
        assert run("udp-echo", "send", "--port", str(srv.port), "x").returncode == 0
        assert srv.proc.wait(timeout=10) == 0  # exits by itself...
        code, out, _err = srv.stop()  # ...so this only collects its output
    assert code == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[0].pop("uptime") > 0
    assert lines == [
        {
            "event": "summary",
            "counts": {"received": 1, "replied": 1},
            "reason": "stopped after --count",
        }
    ]


def test_human_log_is_escaped_on_stderr() -> None:
    # human mode has no JSON listening line: wait for the first stderr line instead
    port = free_udp_port()
    proc = subprocess.Popen(
        [NETKIT, "udp-echo", "serve", "--port", str(port), "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        assert b"listening on udp 127.0.0.1:%d" % port in read_line(proc.stderr, 10)
        res = run("udp-echo", "send", "--port", str(port), "\x1b]52;c;aGk=\x07[bold]x[/]")
        assert res.stdout == b"\\x1b]52;C;AGK=\\x07[BOLD]X[/]\n"
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert out == b""
    assert b"\x1b" not in err
    assert b"\\x1b]52;c;aGk=\\x07[bold]x[/]" in err
    assert b"stopped after --count: received 1, replied 1" in err


def test_send_refused_is_one_line_exit_1() -> None:
    res = run(
        "udp-echo", "send", "--port", str(free_udp_port()), "--timeout", "30", "x", timeout=20
    )
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "no server listening" in err and "Traceback" not in err


def test_send_timeout_exit_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        res = run("udp-echo", "send", "--port", str(port), "--timeout", "0.3", "-r", "1", "x")
    assert res.returncode == 1
    assert res.stderr.decode().splitlines() == [
        # each retry is announced as it starts (issue 14: feedback on long work)
        f"netkit: note: no reply from 127.0.0.1:{port} within 0.3 s, try 2/2",
        f"Error: no reply from 127.0.0.1:{port} within 0.3 s (2 tries); is an echo server "
        "listening there? (try --timeout or --retries)",
    ]


def test_send_shows_rtt_on_a_terminal_and_only_the_replies_in_a_pipe() -> None:
    from netkit.events import Recorder
    from netkit.services.udp_echo import UdpEchoServer
    from tests.helpers import read_pty

    with UdpEchoServer(Recorder(), port=0) as server:
        port = server.address[1]
        argv = ["udp-echo", "send", "--port", str(port), "--no-color", "hello", "wörld"]
        piped = run(*argv)
        shown = read_pty([NETKIT, *argv], env()).decode()
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode() == "HELLO\nWöRLD\n"
    assert piped.stderr == b""  # a script's stderr stays for errors
    lines = shown.splitlines()
    assert lines[0::2] == ["HELLO", "WöRLD"]
    for line, size in zip(lines[1::2], (5, 6), strict=True):
        assert re.fullmatch(rf"{size} B from 127\.0\.0\.1:{port} in [0-9.]+ ms", line), line


def test_usage_errors_exit_2() -> None:
    for args in (
        ["udp-echo", "serve", "--port", "70000"],
        ["udp-echo", "serve", "--rate", "0"],
        ["udp-echo", "send", "--port", "0", "x"],
        ["udp-echo", "send"],
        ["udp-echo", "send", "--host", "[::1", "x"],
        ["udp-echo", "send", "--timeout", "-1", "x"],
    ):
        res = run(*args)
        assert res.returncode == 2, args
        assert b"Traceback" not in res.stderr


def test_runtime_errors_exit_1() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json") as srv:
        res = run("udp-echo", "serve", "--port", str(srv.port))  # address in use
        assert res.returncode == 1
        assert b"address already in use" in res.stderr and b"Traceback" not in res.stderr
    res = run("udp-echo", "send", "--host", "no-such-host.invalid", "x")
    assert res.returncode == 1 and b"cannot resolve" in res.stderr
    res = run("udp-echo", "send", "x" * 70_000)
    assert res.returncode == 1 and b"message too long" in res.stderr


def test_help_texts() -> None:
    for args in (
        ["udp-echo", "--help"],
        ["udp-echo", "serve", "--help"],
        ["udp-echo", "send", "-h"],
    ):
        res = run(*args)
        assert res.returncode == 0 and b"Usage: netkit udp-echo" in res.stdout


@pytest.mark.parametrize("command", [["udp-echo", "serve"], ["creosote", "listen"]])
def test_closed_stdout_stops_the_server_without_traceback(command: list[str]) -> None:
    """`netkit udp-echo serve --json | head -1`: the server stops, exit 1, no traceback."""
    proc = subprocess.Popen(
        [NETKIT, *command, "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        port = json.loads(read_line(proc.stdout, 10))["port"]
        proc.stdout.close()  # the reader went away
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", port))
        assert proc.wait(timeout=10) == 1
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
    assert b"Traceback" not in err


def test_drop_notice_on_stop_has_one_level_of_parentheses() -> None:
    """Issue 14 item 8: the stop notice counting unanswered datagrams reads cleanly."""
    with Server("udp-echo", "serve", "--port", "0", "--rate", "1", human=True) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", srv.port))
            for i in range(5):
                s.send(b"%d" % i)
        # a probe from another source address (a bucket of its own), sent after the
        # five: once it is answered, the five were handled
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
            p.bind(("127.0.0.2", 0))
            p.settimeout(5)
            p.sendto(b"probe", ("127.0.0.1", srv.port))
            assert p.recv(100) == b"PROBE"
        code, _out, err = srv.stop(signal.SIGINT)
    assert code == 0, err
    [line] = [ln for ln in err.decode().splitlines() if ln.startswith("netkit: info: not answ")]
    pattern = r"netkit: info: not answered: (\d) datagrams? \(source over its --rate limit\)"
    m = re.fullmatch(pattern, line)
    assert m and 1 <= int(m.group(1)) <= 4, line

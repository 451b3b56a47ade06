"""upper-server as a real process: serve in every mode, send, chat, ncat and socat."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time

import pytest

from tests.helpers import NETKIT, Server, env, peer, read_line, run
from tests.proc import zombies
from tests.stream_util import connect, free_port, recv_line

MODES = [
    ["--mode", "sync"],
    ["--mode", "thread"],
    ["--mode", "fork"],
    ["--mode", "fork", "--prefork", "3"],
    ["--mode", "async"],
    ["--mode", "async", "--loop", "asyncio"],
]
IDS = ["sync", "thread", "fork", "prefork", "async", "async-asyncio"]


def serve(*args: str) -> Server:
    return Server("upper-server", "serve", "--port", "0", "--json", *args)


def events_until(srv: Server, name: str, n: int = 1) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    while sum(e["event"] == name for e in seen) < n:
        seen.append(srv.next_event(timeout=10))
    return seen


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_send_and_json_log(mode: list[str]) -> None:
    with serve(*mode) as srv:
        got = run("upper-server", "send", "-p", str(srv.port), "hello", "wörld", "--json")
        assert got.returncode == 0, got.stderr
        replies = [json.loads(line) for line in got.stdout.splitlines()]
        assert [r["text"] for r in replies] == ["HELLO", "WöRLD"]
        assert all(r["event"] == "reply" for r in replies)
        seen = events_until(srv, "disconnect")
        kinds = [e["event"] for e in seen]
        assert kinds == ["connect", "line", "line", "disconnect"]
        assert seen[0]["peer"] == seen[-1]["peer"]
        assert seen[-1]["reason"] == "empty line" and seen[-1]["lines"] == 2
        if "fork" in mode:
            assert zombies(srv.proc.pid) == []
        code, out, _err = srv.stop()
    assert code == 0
    summary = json.loads(out.splitlines()[-1])
    assert summary["event"] == "summary" and summary["counts"]["lines"] == 2


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_connect_names_the_worker(mode: list[str]) -> None:
    """fork mode logs the child's pid, thread mode the thread's name (exercise 5)."""
    with serve(*mode) as srv:
        with connect((srv.host, srv.port)) as sock:
            sock.sendall(b"x\n")
            assert recv_line(sock) == b"X\n"
            [connected] = [e for e in events_until(srv, "line") if e["event"] == "connect"]
            worker = connected.get("worker")
            if "fork" in mode:
                assert isinstance(worker, str) and worker.startswith("pid ")
                pid = int(worker.removeprefix("pid "))
                assert pid != srv.proc.pid and os.getpgid(pid) >= 0  # a live process of its own
            elif "thread" in mode:
                assert isinstance(worker, str) and worker.startswith("thread netkit-conn-")
            else:
                assert worker is None  # one thread or one event loop serves them all
        srv.stop()


@pytest.mark.interop
@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_ncat_and_socat_as_line_clients(mode: list[str]) -> None:
    ncat, socat = peer("ncat"), peer("socat")
    with serve(*mode, "--quiet") as srv:
        out = subprocess.run(
            [ncat, "127.0.0.1", str(srv.port)],
            input=b"abc\r\nxyz\n\nnot served\n",
            capture_output=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"ABC\r\nXYZ\n"
        out = subprocess.run(
            [socat, "-t2", "-", f"TCP:127.0.0.1:{srv.port}"],
            input=b"one\ntwo\r\n",
            capture_output=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"ONE\nTWO\r\n"  # closed at EOF of the client
        code, out_, _ = srv.stop()
    assert code == 0
    assert json.loads(out_.splitlines()[-1])["counts"]["connections"] == 2


def ncat(port: int, data: bytes) -> bytes:
    """What ``ncat`` prints when *data* is its stdin (it half-closes at EOF, then reads)."""
    out = subprocess.run(
        [peer("ncat"), "127.0.0.1", str(port)], input=data, capture_output=True, timeout=20
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.interop
@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_unterminated_last_line_is_answered_and_logged(mode: list[str]) -> None:
    """``printf abc | ncat HOST PORT`` gets ``ABC``, as from the lecture's server."""
    with serve(*mode) as srv:
        assert ncat(srv.port, b"one\nabc") == b"ONE\nABC"
        seen = events_until(srv, "disconnect")
        assert [e["text"] for e in seen if e["event"] == "line"] == ["one", "abc"]
        assert seen[-1]["reason"] == "eof" and seen[-1]["lines"] == 2
        code, out_, _ = srv.stop()
    assert code == 0
    assert json.loads(out_.splitlines()[-1])["counts"]["lines"] == 2


def trickle_until_closed(socks: list[socket.socket], seconds: float) -> set[socket.socket]:
    """Send each socket one byte of a line that never ends, again and again (a
    slowloris client), until the server closes them or *seconds* pass; the closed ones."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + seconds
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for sock in socks:
            if sock not in closed:
                try:
                    sock.send(b"x")
                except OSError:
                    closed.add(sock)
        # a byte every 0.3 s: never silent for long, never a whole line
        ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.3)
        for sock in ready:
            try:
                if not sock.recv(4096):
                    closed.add(sock)
            except OSError:
                closed.add(sock)
    return closed


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_trickling_clients_cannot_hold_every_slot(mode: list[str]) -> None:
    """slowloris: three clients sending a byte every 0.3 s held --max-clients 3 for good."""
    with serve(*mode, "--max-clients", "3", "--line-timeout", "1") as srv:
        socks = [connect((srv.host, srv.port)) for _ in range(3)]
        try:
            closed = trickle_until_closed(socks, 20)
        finally:
            for sock in socks:
                sock.close()
        assert len(closed) == 3
        seen = events_until(srv, "disconnect", 3)
        reasons = [e["reason"] for e in seen if e["event"] == "disconnect"]
        assert reasons == ["line timeout"] * 3
        with connect((srv.host, srv.port)) as sock:  # a slot is free again
            sock.sendall(b"served\n")
            assert recv_line(sock) == b"SERVED\n"
        code, out, _ = srv.stop()
    assert code == 0
    assert json.loads(out.splitlines()[-1])["counts"]["line_timeout"] == 3


@pytest.mark.interop
@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_plain_is_rfc_862_echo_over_tcp(mode: list[str]) -> None:
    """--plain: an echo server for an echo client (ncat here), empty lines and all."""
    with serve(*mode, "--plain") as srv:
        sent = b"Mixed Case\n\nafter the empty line\xff"
        assert ncat(srv.port, sent) == sent
        seen = events_until(srv, "disconnect")
        assert seen[-1]["reason"] == "eof" and seen[-1]["lines"] == 3
        code, _out, _ = srv.stop()
    assert code == 0


def test_plain_over_udp_echoes_unchanged() -> None:
    with serve("--udp", "--plain") as srv:
        got = run("upper-server", "send", "--udp", "-p", str(srv.port), "MiXed", "--json")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["text"] == "MiXed"


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_sigterm_with_open_connections_stops_within_two_seconds(mode: list[str]) -> None:
    with serve(*mode, "--quiet") as srv:
        socks = [connect((srv.host, srv.port)) for _ in range(50 if "--prefork" not in mode else 3)]
        try:
            socks[0].sendall(b"x\n")
            assert recv_line(socks[0]) == b"X\n"
            start = time.monotonic()
            code, out, err = srv.stop(signal.SIGTERM, timeout=10)
            took = time.monotonic() - start
        finally:
            for sock in socks:
                sock.close()
    assert code == 0, err
    assert took < 5  # the issue asks for 2 s; leave room for a loaded CI box
    summary = json.loads(out.splitlines()[-1])
    assert summary["reason"] == "stopped by SIGTERM"
    assert b"Traceback" not in err


def test_send_reads_stdin_and_udp() -> None:
    with serve() as srv:
        got = run("upper-server", "send", "-p", str(srv.port), "-", input=b"a\nb\r\n\nc\n")
        assert got.returncode == 0
        assert got.stdout.decode().split() == ["A", "B"]
    with serve("--udp") as srv:
        assert srv.listening["transport"] == "udp"
        got = run("upper-server", "send", "--udp", "-p", str(srv.port), "dgram", "--json")
        assert got.returncode == 0
        assert json.loads(got.stdout)["text"] == "DGRAM"
        assert srv.next_event()["event"] == "datagram"


def test_chat_over_a_pipe() -> None:
    with serve() as srv:
        got = run("upper-server", "chat", "-p", str(srv.port), input=b"first\nsecond\n\nafter\n")
        assert got.returncode == 0, got.stderr
        assert got.stdout.decode().split() == ["FIRST", "SECOND"]
        got = run("upper-server", "chat", "-p", str(srv.port), input=b"eof ends it\n")
        assert got.returncode == 0 and got.stdout == b"EOF ENDS IT\n"


def test_chat_ends_with_exit_1_when_the_server_goes_away() -> None:
    with serve("--idle-timeout", "0.3") as srv:
        r, w = os.pipe()
        proc = subprocess.Popen(
            [NETKIT, "upper-server", "chat", "-p", str(srv.port)],
            stdin=r,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        )
        os.close(r)
        try:
            os.write(w, b"hi\n")
            assert read_line(proc.stdout, 10) == b"HI\n"
            # the server closes the idle connection; chat notices while it waits
            _out, err = proc.communicate(timeout=10)
        finally:
            os.close(w)
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=5)
    assert proc.returncode == 1
    assert err.decode().strip().count("\n") == 0 and "closed the connection" in err.decode()


@pytest.mark.parametrize("mode", ["thread", "fork", "async"])
def test_send_and_chat_turned_away_say_so_in_one_line_and_exit_1(mode: str) -> None:
    """Past --max-clients the busy line is the server's, not a reply to print: a
    script sees exit 1 and the reason, whether it sent a line or chatted."""
    with serve("--mode", mode, "--max-clients", "1") as srv:
        with connect(("127.0.0.1", srv.port)) as held:
            held.sendall(b"hold\n")
            assert recv_line(held) == b"HOLD\n"
            for cmd in (["send", "hello"], ["chat"]):
                got = run("upper-server", *cmd, "-p", str(srv.port), input=b"hi\n")
                assert got.returncode == 1, got
                assert got.stdout == b""
                assert got.stderr.decode().splitlines() == [
                    f"Error: 127.0.0.1:{srv.port} turned us away: ERROR server busy "
                    "(max clients reached); try again later"
                ]
        events_until(srv, "disconnect")  # the held one: its slot is free
        got = run("upper-server", "send", "-p", str(srv.port), "hello")
        assert got.returncode == 0 and got.stdout.strip() == b"HELLO", got


def test_client_errors_are_one_line() -> None:
    port = free_port()
    for cmd in (["send", "x"], ["chat"]):
        got = run("upper-server", *cmd, "-p", str(port), input=b"")
        assert got.returncode == 1, got
        assert got.stderr.decode().count("\n") == 1 and b"refused" in got.stderr
    got = run("upper-server", "send", "--udp", "-p", str(port), "--timeout", "0.3", "x")
    assert got.returncode == 1 and b"Traceback" not in got.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--mode", "thread", "--prefork", "2"],
        ["serve", "--udp", "--mode", "fork"],
        ["serve", "--mode", "thread", "--loop", "uvloop"],
        ["serve", "--max-line", "0"],
        ["serve", "--mode", "warp"],
        ["send", ""],
        ["send", "two\nlines"],
        ["send", "--port", "0", "x"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    got = run("upper-server", *args)
    assert got.returncode == 2, got
    assert b"Traceback" not in got.stderr


def test_human_log_escapes_untrusted_bytes() -> None:
    proc = subprocess.Popen(
        [NETKIT, "upper-server", "serve", "--port", "0", "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        first = read_line(proc.stderr, 10).decode()
        port = int(first.split(":")[1].split()[0])
        with connect(("127.0.0.1", port)) as sock:
            sock.sendall(b"\x1b[31mred [bold]x[/bold] \xff\x07\n")
            assert recv_line(sock) == b"\x1b[31MRED [BOLD]X[/BOLD] \xff\x07\n"
            sock.sendall(b"\n")
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
    text = err.decode()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mred [bold]x[/bold] \\xff\\x07" in text
    assert "connected" in text and "disconnected (empty line): 1 line" in text
    assert "stopped after --count" in text


def test_ipv6_cli() -> None:
    with Server("upper-server", "serve", "-6", "--host", "::1", "--port", "0", "--json") as srv:
        assert srv.host == "::1"
        got = run("upper-server", "send", "--host", f"[::1]:{srv.port}", "v6")
        assert got.returncode == 0 and got.stdout == b"V6\n"


def test_help_and_lazy_import() -> None:
    for args in (["--help"], ["upper-server", "--help"], ["tcp-time", "serve", "--help"]):
        got = run(*args)
        assert got.returncode == 0
    code = (
        "import sys; from netkit.cli import cli; "
        "cli.get_command(None, 'upper-server'); cli.get_command(None, 'tcp-time'); "
        "bad = [m for m in ('rich', 'asyncio', 'netkit.services.upper') if m in sys.modules]; "
        "print(bad)"
    )
    import sys

    got = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
    assert got.stdout.strip() == b"[]", got


def test_port_is_reported_for_port_zero_and_busy_port_fails() -> None:
    with serve("--mode", "async") as srv:
        with socket.create_connection((srv.host, srv.port), timeout=5):
            pass
        busy = run("upper-server", "serve", "--port", str(srv.port))
        assert busy.returncode == 1 and b"already in use" in busy.stderr


@pytest.mark.parametrize("mode", ["sync", "thread"])
def test_out_of_file_descriptors_is_logged_and_retried(mode: str) -> None:
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))

    srv = Server(
        "upper-server", "serve", "--port", "0", "--json", "--mode", mode, preexec_fn=low_limit
    )
    socks: list[socket.socket] = []
    with srv:
        try:
            for _ in range(40):
                socks.append(connect((srv.host, srv.port)))
            warning = read_line(srv.proc.stderr, 10)
            assert b"too many open files" in warning and b"not accepting for" in warning
        finally:
            for sock in socks:
                sock.close()
        with connect((srv.host, srv.port), timeout=10) as sock:
            sock.sendall(b"after\n")
            assert recv_line(sock) == b"AFTER\n"
        code, _out, _err = srv.stop()
    assert code == 0


def test_fork_mode_without_fork_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from netkit.cli import cli

    monkeypatch.delattr(os, "fork")
    result = CliRunner().invoke(cli, ["upper-server", "serve", "--mode", "fork", "--port", "0"])
    assert result.exit_code == 2
    assert "needs fork()" in result.output


def _wait_event(srv: Server, name: str) -> dict[str, object]:
    for _ in range(1000):  # bounded: each read waits at most 10 s
        event = srv.next_event(timeout=10)
        if event["event"] == name:
            return event
    raise AssertionError(f"no {name} event")


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_process_two_clients_abort_and_a_1mib_line(mode: list[str]) -> None:
    import threading

    with serve(*mode) as srv:
        addr = (srv.host, srv.port)
        with connect(addr) as first, connect(addr) as second:
            first.sendall(b"one\n")
            assert recv_line(first) == b"ONE\n"
            second.sendall(b"two\n")
            if mode == ["--mode", "sync"]:
                waiting = _wait_event(srv, "waiting")
                assert waiting["peer"] == f"127.0.0.1:{second.getsockname()[1]}"
                first.sendall(b"\n")
            assert recv_line(second) == b"TWO\n"
        # a client that aborts in the middle of a line
        sock = connect(addr)
        sock.sendall(b"half")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        # a 1 MiB line: an error reply (or a reset), and the server goes on
        big = connect(addr)
        pusher = threading.Thread(target=_push, args=(big,))
        pusher.start()
        try:
            reply = recv_line(big)
        except ConnectionResetError:
            reply = b"(reset)"
        pusher.join(20)
        big.close()
        assert reply.startswith(b"ERROR line longer") or reply == b"(reset)"
        assert _wait_event(srv, "disconnect")  # some disconnect is logged ...
        with connect(addr) as sock:
            sock.sendall(b"after\n")
            assert recv_line(sock) == b"AFTER\n"
        code, out, _err = srv.stop()
    assert code == 0
    summary = json.loads(out.splitlines()[-1])
    assert summary["counts"]["line_too_long"] == 1
    # the aborted client may be reset before the server even accepts it
    assert summary["counts"]["connections"] in (4, 5)


def _push(sock: socket.socket) -> None:
    try:
        sock.sendall(b"y" * (1 << 20) + b"\n")
    except OSError:
        pass  # reset by the server after the error reply


@pytest.mark.parametrize("mode", ["thread", "fork", "async"])
def test_process_200_idle_connections_and_no_zombies(mode: str) -> None:
    with serve("--mode", mode) as srv:
        addr = (srv.host, srv.port)
        idle = []
        try:
            for _ in range(200):
                idle.append(connect(addr))
            connects = 0
            while connects < 200:
                connects += srv.next_event(timeout=30)["event"] == "connect"
            with connect(addr, timeout=10) as sock:
                sock.sendall(b"new\n")
                assert recv_line(sock) == b"NEW\n"
        finally:
            for sock in idle:
                sock.close()
        gone = 0
        while gone < 201:
            gone += srv.next_event(timeout=30)["event"] == "disconnect"
        assert zombies(srv.proc.pid) == []
        code, _out, _err = srv.stop()
    assert code == 0


@pytest.mark.interop
def test_socat_as_udp_client() -> None:
    socat = peer("socat")
    with serve("--udp") as srv:
        out = subprocess.run(
            [socat, "-t1", "-", f"UDP:127.0.0.1:{srv.port}"],
            input=b"datagram one\n",
            capture_output=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"DATAGRAM ONE\n"
        event = srv.next_event()
        assert event["event"] == "datagram" and event["text"] == "datagram one\n"
        assert srv.stop()[0] == 0

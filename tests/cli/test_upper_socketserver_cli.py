"""upper-server serve --impl socketserver as a real process: ncat and netkit's clients,
the same log and stop as netkit's modes, one Error line for what it cannot honour."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.helpers import NETKIT, Server, env, peer, read_line, run
from tests.proc import children
from tests.stream_util import connect, recv_line

MODES = ["sync", "thread", "fork"]


def serve(*args: str, collect: bool = False) -> Server:
    return Server(
        "upper-server",
        "serve",
        *("--impl", "socketserver", "--port", "0", "--json"),
        *args,
        collect=collect,
    )


@pytest.mark.interop
@pytest.mark.parametrize("mode", MODES)
def test_ncat_and_netkit_send_with_the_same_log(mode: str) -> None:
    with serve("--mode", mode, collect=True) as srv:
        assert srv.listening["mode"] == mode and srv.listening["impl"] == "socketserver"
        out = subprocess.run(
            [peer("ncat"), "127.0.0.1", str(srv.port)],
            input=b"abc\r\nxyz\n\nnot served\n",
            capture_output=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"ABC\r\nXYZ\n"
        got = run("upper-server", "send", "-p", str(srv.port), "hello", "--json")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["text"] == "HELLO"
        srv.wait_count("disconnect", 2)
        code, _out, err = srv.stop(signal.SIGINT)
    assert code == 0, err
    kinds = [e["event"] for e in srv.events]
    assert kinds == [
        *("connect", "line", "line", "disconnect"),
        *("connect", "line", "disconnect", "summary"),
    ]
    first, second = srv.of("disconnect")
    assert (first["reason"], first["lines"]) == ("empty line", 2)
    assert (second["reason"], second["lines"]) == ("empty line", 1)
    summary = srv.events[-1]
    assert summary["reason"] == "stopped by SIGINT"
    assert summary["counts"] == {"connections": 2, "lines": 3}
    workers = [e.get("worker") for e in srv.of("connect")]
    if mode == "fork":
        assert all(str(w).startswith("pid ") for w in workers)
        assert children(srv.pid) == []
    elif mode == "thread":
        assert all(str(w).startswith("thread ") for w in workers)
    else:
        assert workers == [None, None]


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_gives_open_connections_the_grace_then_closes_them(mode: str) -> None:
    with serve("--mode", mode, "--grace", "0.5", collect=True) as srv:
        with connect((srv.host, srv.port)) as sock:
            sock.sendall(b"x\n")
            assert recv_line(sock) == b"X\n"
            srv.wait_count("connect", 1)
            started = time.monotonic()
            code, _out, err = srv.stop(signal.SIGTERM, timeout=10)
            took = time.monotonic() - started
            assert sock.recv(10) == b""  # the server closed it
    assert code == 0, err
    assert 0.5 <= took < 6, (took, err, srv.events)
    assert b"stopping: waiting up to 0.5 s for 1 busy connection" in err
    assert b"Traceback" not in err
    [gone] = srv.of("disconnect")
    assert gone["reason"] == "server stopping" and gone["lines"] == 1
    assert srv.events[-1]["event"] == "summary"
    assert children(srv.pid) == []


def test_fork_second_signal_closes_at_once() -> None:
    with serve("--mode", "fork", "--grace", "60", collect=True) as srv:
        with connect((srv.host, srv.port)) as sock:
            sock.sendall(b"x\n")
            assert recv_line(sock) == b"X\n"
            srv.proc.send_signal(signal.SIGINT)
            srv.wait_for(
                lambda _evs: b"Ctrl-C again" in srv.stderr, timeout=10, what="the stopping notice"
            )
            started = time.monotonic()
            code, _out, err = srv.stop(signal.SIGINT, timeout=10)
            assert time.monotonic() - started < 6  # not the 60 s grace
    assert code == 0, err
    assert srv.of("disconnect")[0]["reason"] == "server stopping"
    assert children(srv.pid) == []


def test_count_and_quiet() -> None:
    with serve("--mode", "thread", "--count", "1", "--quiet") as srv:
        got = run("upper-server", "send", "-p", str(srv.port), "one", "two")
        assert got.returncode == 0 and got.stdout == b"ONE\nTWO\n"
        srv.proc.wait(10)  # it stops by itself after --count 1
        code, out, err = srv.stop()
    assert code == 0, err
    [summary] = [json.loads(line) for line in out.splitlines()]
    assert summary["reason"] == "stopped after --count"
    assert summary["counts"] == {"connections": 1, "lines": 2}


def test_banner_names_the_standard_library_class() -> None:
    args = ["upper-server", "serve", "--impl", "socketserver", "--mode", "fork", "--port", "0"]
    proc = subprocess.Popen(
        [NETKIT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env()
    )
    try:
        first = read_line(proc.stderr, 10).decode()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    assert first.startswith("listening on tcp 127.0.0.1:")
    assert "with --mode fork on the standard library's socketserver.ForkingTCPServer" in first
    assert b"stopped by SIGINT" in err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--mode", "async"], "--mode async"),
        (["--udp"], "--udp"),
        (["--plain"], "--plain"),
        (["--max-line", "10"], "--max-line"),
        (["--idle-timeout", "5"], "--idle-timeout"),
        (["--line-timeout", "5"], "--line-timeout"),
        (["--max-clients", "3"], "--max-clients"),
        (["--mode", "fork", "--prefork", "2"], "--prefork"),
        (["--loop", "asyncio"], "--loop"),
    ],
)
def test_what_socketserver_cannot_honour_is_one_error_line(args: list[str], named: str) -> None:
    got = run("upper-server", "serve", "--impl", "socketserver", "--port", "0", *args)
    assert got.returncode == 2, got
    errors = [line for line in got.stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and named in errors[0], got.stderr
    assert "socketserver" in errors[0]
    assert b"Traceback" not in got.stderr

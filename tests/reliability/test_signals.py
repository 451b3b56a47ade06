"""Signals and broken pipes: servers stop cleanly, print a summary, never a
traceback.  Issue 6, items 9 and 16 (upper-server and tcp-time; creosote's
log file is covered with the datagram half of the suite).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import NETKIT, PORT_0_JSON, Server, env, read_line
from tests.reliability.proc_util import close_all, open_idle

IDLE = 100


def _one_run(args: tuple[str, ...], sig: signal.Signals, idle: int) -> tuple[int, float, str]:
    """Start a server, hold *idle* silent connections, signal it: (code, seconds, why)."""
    with Server(*args, *PORT_0_JSON, collect=True) as srv:
        socks = open_idle(srv.port, idle)
        try:
            if args[0] == "upper-server":
                # every connection is accepted (sync: one served, the rest waiting;
                # prefork: one per worker, the rest in the backlog)
                kinds = ("connect", "waiting")
                want = int(args[args.index("--prefork") + 1]) if "--prefork" in args else idle
                srv.wait_for(
                    lambda evs: sum(e["event"] in kinds for e in evs) >= want, 10, "all accepted"
                )
            code, _out, _err = srv.stop(sig, timeout=5)
            took = srv.took
        finally:
            close_all(socks)
        summaries = srv.of("summary")
        reason = str(summaries[-1]["reason"]) if summaries else "no summary"
        assert b"Traceback" not in srv.stderr, srv.stderr.decode(errors="replace")
        return code, took, reason


RUNS = (
    # thread mode carries the 20 + 20 runs; every other mode and tcp-time a few
    [(("upper-server", "serve", "--mode", "thread"), sig, 20) for sig in ("SIGINT", "SIGTERM")]
    + [
        (("upper-server", "serve", "--mode", mode), sig, 4 if mode == "fork" else 2)
        for mode in ("async", "fork", "sync")
        for sig in ("SIGINT", "SIGTERM")
    ]
    + [(("upper-server", "serve", "--mode", "fork", "--prefork", "4"), "SIGTERM", 2)]
    + [(("tcp-time", "serve"), sig, 2) for sig in ("SIGINT", "SIGTERM")]
)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("args", "sig_name", "times"), RUNS)
def test_signal_with_100_idle_exits_0_within_2s_with_summary(
    args: tuple[str, ...], sig_name: str, times: int
) -> None:
    """Item 9: SIGINT / SIGTERM with 100 idle connections, *times* runs (thread
    mode 20 of each): exit 0 within 2 s, summary 'stopped by SIG...' printed."""
    sig = signal.Signals[sig_name]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _i: _one_run(args, sig, IDLE), range(times)))
    worst = max(took for _c, took, _r in results)
    print(f"{' '.join(args)} {sig_name} x{times}: slowest exit {worst:.2f} s")
    for code, took, reason in results:
        assert code == 0
        assert took <= 2.0, results
        assert reason == f"stopped by {sig_name}"


@pytest.mark.parametrize("sig_name", ["SIGINT", "SIGTERM"])
def test_human_log_ends_with_the_summary_line(sig_name: str) -> None:
    """Item 9, the human log: with 100 idle connections a signal ends it with
    one 'stopped by SIG...' summary line on stderr, exit 0 within 2 s."""
    import re
    import time

    proc = subprocess.Popen(
        [NETKIT, "upper-server", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env(NO_COLOR="1"),
    )
    try:
        first = read_line(proc.stderr, 10).decode()
        m = re.search(r":(\d+) ", first)
        assert m, first
        socks = open_idle(int(m.group(1)), IDLE)
        try:
            for _ in range(IDLE):  # one 'connected' line each
                assert b" connected" in read_line(proc.stderr, 5)
            t0 = time.monotonic()
            proc.send_signal(signal.Signals[sig_name])
            os.set_blocking(proc.stderr.fileno(), True)  # type: ignore[union-attr]
            _out, err = proc.communicate(timeout=5)
            took = time.monotonic() - t0
        finally:
            close_all(socks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    lines = err.decode().splitlines()
    assert proc.returncode == 0
    assert took <= 2.0
    assert lines[-1].startswith(f"stopped by {sig_name}: connections {IDLE}"), lines[-3:]
    assert sum(line.startswith("stopped by") for line in lines) == 1


def _bash(script: str, timeout: float = 10) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", script], capture_output=True, timeout=timeout, env=env())


def test_resolve_json_into_head_0_no_traceback() -> None:
    """Item 16: `netkit resolve localhost --json | head -0`: no traceback, 0 or 1."""
    for _ in range(5):
        proc = _bash(f"'{NETKIT}' resolve localhost --json | head -0; echo $PIPESTATUS >&2")
        err = proc.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        assert err.splitlines()[-1] in ("0", "1"), err


@pytest.mark.parametrize(
    "args",
    [
        ("upper-server", "serve", "--mode", "thread"),
        ("upper-server", "serve", "--mode", "async"),
        ("upper-server", "serve", "--mode", "fork"),
        ("upper-server", "serve", "--mode", "sync"),
        ("tcp-time", "serve"),
        ("upper-server", "serve", "--mode", "thread", "HUMAN"),
        ("upper-server", "serve", "--mode", "async", "HUMAN"),
        ("tcp-time", "serve", "HUMAN"),
    ],
)
def test_server_json_into_head_1_stops_without_traceback(args: tuple[str, ...]) -> None:
    """Item 16: `netkit SERVER --json | head -1` (and the human log:
    `netkit SERVER 2>&1 | head -1`), then a client: the server finds its output
    gone, stops by itself (exit 1, like a broken pipe anywhere), no traceback."""
    import re

    human = args[-1] == "HUMAN"
    cmd = " ".join(args[:-1] if human else args)
    pipe = "--port 0 2>&1 | head -1" if human else "--port 0 --json | head -1"
    proc = subprocess.Popen(
        ["bash", "-c", f"'{NETKIT}' {cmd} {pipe}; echo $PIPESTATUS >&2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(NO_COLOR="1"),
        start_new_session=True,  # a server left running is killed with its group
    )
    try:
        first = read_line(proc.stdout, 10)
        if human:
            m = re.search(rb":(\d+) ", first)
            assert m, first
            port = int(m.group(1))
        else:
            port = json.loads(first)["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(b"hi\r\n")
                s.recv(100)
            except OSError:
                pass  # closed as the server stopped: fine
        _out, err = proc.communicate(timeout=10)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.communicate(timeout=5)
    text = err.decode(errors="replace")
    assert "Traceback" not in text, text
    assert text.splitlines()[-1] == "1", text


def test_idle_list_helper_bounded() -> None:
    """The idle connections of these tests are all closed again (no leak)."""
    with Server("upper-server", "serve", "--quiet", *PORT_0_JSON, collect=True) as srv:
        socks = open_idle(srv.port, 3)
        close_all(socks)
        assert socks == []
        code, _out, _err = srv.stop()
        assert code == 0

"""upper-server and tcp-time limits: idle timeout, connection cap, descriptor
exhaustion, fork reaping.  Issue 6, items 5, 7 and 8.
"""

from __future__ import annotations

import itertools
import resource
import socket
import time

import pytest

from tests.helpers import PORT_0_JSON, Server
from tests.proc import alive, cpu_seconds, descendants, threads
from tests.reliability.proc_util import (
    close_all,
    exchange,
    open_idle,
    wait_until,
)


def _eof_times(socks: list[socket.socket], t0: float, limit: float) -> list[float]:
    """Seconds from *t0* until each socket sees EOF (or a reset)."""
    out = []
    for s in socks:
        s.settimeout(max(t0 + limit - time.monotonic(), 0.01))
        try:
            while s.recv(4096):
                pass
        except TimeoutError:
            out.append(float("inf"))
            continue
        except OSError:
            pass
        out.append(time.monotonic() - t0)
    return out


@pytest.mark.parametrize(
    ("mode", "n"),
    [("thread", 20), ("async", 20), ("async --loop asyncio", 20), ("fork", 10), ("sync", 1)],
)
def test_idle_timeout_within_10_percent_and_back_to_baseline(mode: str, n: int) -> None:
    """Item 5: --idle-timeout 1.5 closes silent connections after 1.35-1.65 s (±10%);
    threads (/proc/PID/task), children and open connections return to baseline."""
    idle_timeout = 1.5
    with Server(
        "upper-server",
        "serve",
        "--mode",
        *mode.split(),
        "--idle-timeout",
        str(idle_timeout),
        *PORT_0_JSON,
        collect=True,
    ) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as warm:
            assert exchange(warm, b"warm\n") == b"WARM\n"
        srv.wait_count("disconnect", 1)
        # baseline: the main thread and the serving loop's (the warm-up's is gone)
        base_threads = 2
        assert wait_until(lambda: threads(srv.pid) == base_threads, 2, srv.proc)
        base_children = len(descendants(srv.pid))
        socks = open_idle(srv.port, n)
        try:
            srv.wait_count("connect", n + 1)
            t0 = time.monotonic()  # every connection is accepted by now
            got = _eof_times(socks, t0, idle_timeout * 2 + 1)
        finally:
            close_all(socks)
        # accepted at most a little before t0: the close comes 0.9-1.1 x timeout after
        print(f"{mode}: closed after {min(got):.3f}-{max(got):.3f} s (timeout {idle_timeout})")
        assert all(idle_timeout * 0.9 <= g <= idle_timeout * 1.1 for g in got), got
        ends = srv.wait_count("disconnect", n + 1)[1:]
        assert all(e["reason"] == "idle timeout" for e in ends), ends
        # (threads emit their disconnect in any order: the lowest count is the last)
        assert min(int(e["open"]) for e in ends) == 0
        assert wait_until(lambda: threads(srv.pid) == base_threads, 2, srv.proc), (
            threads(srv.pid),
            base_threads,
        )
        assert wait_until(lambda: len(descendants(srv.pid)) == base_children, 2, srv.proc)
        code, _out, _err = srv.stop()
        assert code == 0


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async --loop asyncio"])
def test_cap_20_plus_100_extra_get_one_line_and_close_threads_under_cap_plus_5(mode: str) -> None:
    """Item 5: --max-clients 20, 20 held + 100 extra: each extra gets one line
    saying why and is closed; threads <= cap + 5 (fork: children <= cap)."""
    cap = 20
    with Server(
        "upper-server",
        "serve",
        "--mode",
        *mode.split(),
        "--max-clients",
        str(cap),
        *PORT_0_JSON,
        collect=True,
    ) as srv:
        held = open_idle(srv.port, cap)
        extras: list[socket.socket] = []
        try:
            srv.wait_count("connect", cap)
            peak_threads = threads(srv.pid)
            peak_children = len(descendants(srv.pid))
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                extras.append(s)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                assert data == BUSY
                peak_threads = max(peak_threads, threads(srv.pid))
                peak_children = max(peak_children, len(descendants(srv.pid)))
            rejected = srv.wait_count("rejected", 100)
            assert all("max clients (20)" in str(e["reason"]) for e in rejected)
            # the held ones are still served
            assert exchange(held[0], b"still\n") == b"STILL\n"
        finally:
            close_all(held)
            close_all(extras)
        print(f"{mode}: peak threads {peak_threads}, peak children {peak_children}")
        assert peak_threads <= cap + 5
        assert peak_children <= cap + (mode == "fork")  # fork: + the forking process
        code, _out, _err = srv.stop()
        assert code == 0


BUSY = b"ERROR server busy (max clients reached); try again later\r\n"


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async --loop asyncio"])
def test_a_turned_away_client_that_sent_at_once_reads_the_busy_line_not_a_reset(
    mode: str,
) -> None:
    """A client that sends its lines right after connecting (``echo hi | nc``) to a
    full server reads the busy line and then EOF, never a reset: the server sends a
    FIN after the line and reads what the client sent before closing (a close with
    unread data resets the connection, which can destroy the line unread).  One that
    goes on sending is closed for good within a bounded time."""
    with Server(
        "upper-server",
        "serve",
        "--mode",
        *mode.split(),
        "--max-clients",
        "1",
        *PORT_0_JSON,
        collect=True,
    ) as srv:
        held = open_idle(srv.port, 1)
        try:
            srv.wait_count("connect", 1)
            for _ in range(50):
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    s.sendall(b"hello there\n" * 100)
                    data = b""
                    while chunk := s.recv(4096):  # a reset fails the test here
                        data += chunk
                    assert data == BUSY
            srv.wait_count("rejected", 50)
            # one that keeps sending after the line: the server's socket is closed
            # within DRAIN_SECONDS (0.5 s) and a send then fails (reset, or a broken pipe)
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                s.sendall(b"x\n")
                assert s.recv(4096) == BUSY and s.recv(4096) == b""
                deadline = time.monotonic() + 10
                with pytest.raises(OSError):
                    while time.monotonic() < deadline:
                        s.sendall(b"more\n" * 100)
                        s.recv(0)
                assert time.monotonic() < deadline
            assert exchange(held[0], b"still\n") == b"STILL\n"
        finally:
            close_all(held)
        code, _out, _err = srv.stop()
        assert code == 0


def _nofile_64() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@pytest.mark.parametrize("mode", ["thread", "async", "async --loop asyncio", "fork", "sync"])
def test_nofile_64_and_100_clients_cpu_under_20pct_recovers_in_2s(mode: str) -> None:
    """Item 7: RLIMIT_NOFILE 64, 100 clients held 2 s: server CPU <= 20% of a
    core, <= 1 warning per second, answers again within 2 s after they close."""
    with Server(
        "upper-server",
        "serve",
        "--mode",
        *mode.split(),
        *PORT_0_JSON,
        collect=True,
        preexec_fn=_nofile_64,
    ) as srv:
        cpu0 = cpu_seconds(srv.pid)
        t0 = time.monotonic()
        held: list[socket.socket] = []
        try:
            for _ in range(100):  # connect() completes from the backlog either way
                held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            wait_until(lambda: time.monotonic() - t0 >= 2.0, 3, srv.proc)
            cpu = (cpu_seconds(srv.pid) - cpu0) / (time.monotonic() - t0)
        finally:
            close_all(held)
        t_closed = time.monotonic()
        answered = None
        for _ in range(100):
            left = t_closed + 4 - time.monotonic()
            if left <= 0:
                break
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=left) as s:
                    s.settimeout(left)
                    if exchange(s, b"back\n") == b"BACK\n":
                        answered = time.monotonic() - t_closed
                        break
            except OSError:
                continue
        code, _out, _err = srv.stop()
        warnings = [t for t, line in srv.stderr_lines if b"warning" in line]
        span = max(time.monotonic() - t0, 1.0)
        print(
            f"{mode}: cpu {cpu * 100:.1f}% of a core, answered after {answered} s, "
            f"{len(warnings)} warnings in {span:.1f} s"
        )
        assert cpu <= 0.20
        assert answered is not None and answered <= 2.0
        # at most one per second: no two warnings less than a second apart
        gaps = [b - a for a, b in itertools.pairwise(warnings)]
        assert len(warnings) <= span + 1, srv.stderr.decode(errors="replace")
        assert all(g >= 0.9 for g in gaps), gaps
        assert code == 0


def test_fork_1000_sequential_then_sigterm_no_zombies_no_children() -> None:
    """Item 8: fork mode, 1000 sequential connections: 0 zombies 1 s after the
    last; SIGTERM: 0 children 5 s after it (5 idle ones were open)."""
    with Server(
        "upper-server", "serve", "--mode", "fork", "--quiet", *PORT_0_JSON, collect=True
    ) as srv:
        for i in range(1000):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                line = f"n{i}\n".encode()
                assert exchange(s, line) == line.upper()
        assert wait_until(lambda: not descendants(srv.pid, state="Z"), 1.0, srv.proc), descendants(
            srv.pid, state="Z"
        )
        idle = open_idle(srv.port, 5)
        try:
            for s in idle:
                assert exchange(s, b"x\n") == b"X\n"
            kids = descendants(srv.pid)
            assert len(kids) == 5 + 1  # a child per connection and the forking process
            srv.proc.send_signal(15)
            t0 = time.monotonic()
            gone = wait_until(lambda: not any(alive(k) for k in kids), 5, srv.proc)
            print(f"children gone {time.monotonic() - t0:.2f} s after SIGTERM")
            assert gone
            srv.proc.wait(5)
        finally:
            close_all(idle)
        code, _out, _err = srv.stop()
        assert code == 0

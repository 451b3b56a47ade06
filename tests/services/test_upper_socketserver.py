"""upper-server --impl socketserver: the standard library's classes, through the service API.

Each mode runs the real ``socketserver`` class (the test checks the class
too) and reports the same events as netkit's modes; the differences netkit
documents are shown side by side with netkit's own mode.
"""

from __future__ import annotations

import os
import socket
import socketserver
import time
from pathlib import Path

import pytest

from netkit.events import Listening, Notice
from netkit.events.upper_server import ClientWaiting, Connected, Disconnected, LineEvent
from netkit.services.upper import UpperServer
from netkit.services.upper_socketserver import SocketserverUpper
from tests.proc import children, zombies
from tests.sink import Collector
from tests.stream_util import connect, recv_all, recv_line

MODES = ["sync", "thread", "fork"]
STDLIB = {
    "sync": socketserver.TCPServer,
    "thread": socketserver.ThreadingTCPServer,
    "fork": socketserver.ForkingTCPServer,
}


def exchange(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    return recv_line(sock)


def accept_queue(port: int) -> int:
    """Connections waiting in the kernel's accept queue of the listener on *port*
    (for a listening socket, /proc/net/tcp's rx_queue is that queue's length)."""
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A: LISTEN
            return int(queues.split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_runs_the_stdlib_class_and_logs_like_netkit(mode: str) -> None:
    events = Collector()
    with SocketserverUpper(events, port=0, mode=mode) as server:
        assert isinstance(server.ss, STDLIB[mode])
        listening = events.of(Listening)[0]
        assert (listening.mode, listening.impl) == (mode, "socketserver")
        with connect(server.address) as sock:
            assert exchange(sock, b"hello\r\n") == b"HELLO\r\n"
            assert exchange(sock, b"w\xc3\xb6rld\n") == b"W\xc3\xb6RLD\n"
            sock.sendall(b"\n")
            assert recv_all(sock) == b""
        gone = events.wait_for(Disconnected)[0]
        assert (gone.reason, gone.lines, gone.open, gone.total) == ("empty line", 2, 0, 1)
        connected = events.of(Connected)[0]
        assert connected.peer == gone.peer and (connected.open, connected.total) == (1, 1)
        if mode == "fork":
            assert connected.worker is not None and connected.worker.startswith("pid ")
            assert int(connected.worker.split()[1]) != os.getpid()
        elif mode == "thread":
            assert connected.worker is not None and connected.worker.startswith("thread ")
        else:
            assert connected.worker is None
        assert [e.data for e in events.of(LineEvent)] == [b"hello", b"w\xc3\xb6rld"]
    assert server.summary().counts == {"connections": 1, "lines": 2}
    if mode == "fork":
        assert children(os.getpid()) == []


@pytest.mark.parametrize("mode", MODES)
def test_unterminated_last_line_is_answered_at_eof(mode: str) -> None:
    events = Collector()
    with SocketserverUpper(events, port=0, mode=mode) as server:
        with connect(server.address) as sock:
            sock.sendall(b"abc")
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b"ABC"
        gone = events.wait_for(Disconnected)[0]
        assert (gone.reason, gone.lines) == ("eof", 1)


def test_sync_second_client_waits_unseen_in_the_kernel_backlog() -> None:
    """TCPServer does not accept a second client while it serves the first:
    the connection sits in the listen backlog and nothing logs it; netkit's
    sync mode accepts it at once and logs it waiting.  Both answer it only
    once the first leaves."""
    events = Collector()
    with SocketserverUpper(events, port=0, mode="sync") as server:
        port = server.address[1]
        with connect(server.address) as first, connect(server.address) as second:
            assert exchange(first, b"first\n") == b"FIRST\n"
            second.sendall(b"second\n")
            second.settimeout(0.5)
            with pytest.raises(TimeoutError):  # not served while the first is
                second.recv(100)
            assert accept_queue(port) == 1  # in the kernel, not accepted
            assert len(events.of(Connected)) == 1  # nothing about the second
            assert exchange(first, b"again\n") == b"AGAIN\n"
            first.sendall(b"\n")
            second.settimeout(5)
            assert recv_line(second) == b"SECOND\n"
            assert accept_queue(port) == 0
            second.sendall(b"\n")
        events.wait_for(Disconnected, 2)
    kinds = [type(e).__name__ for e in events.events if not isinstance(e, Listening)]
    first_client = ["Connected", "LineEvent", "LineEvent", "Disconnected"]
    assert kinds == [*first_client, "Connected", "LineEvent", "Disconnected"]

    netkit = Collector()
    with UpperServer(netkit, port=0, mode="sync") as server:
        port = server.address[1]
        with connect(server.address) as first, connect(server.address) as second:
            assert exchange(first, b"first\n") == b"FIRST\n"
            second.sendall(b"second\n")
            waiting = netkit.wait_for(ClientWaiting)[0]  # accepted, and said so
            assert waiting.serving == netkit.of(Connected)[0].peer
            assert accept_queue(port) == 0
            second.settimeout(0.5)
            with pytest.raises(TimeoutError):  # but served only after the first, too
                second.recv(100)
            first.sendall(b"\n")
            second.settimeout(5)
            assert recv_line(second) == b"SECOND\n"
            second.sendall(b"\n")
        netkit.wait_for(Disconnected, 2)


def test_no_line_cap_and_no_idle_timeout() -> None:
    """What the lecture's handler does not have: a line of 1 MiB is read whole
    (netkit's default cap is 64 KiB), a silent client stays connected."""
    events = Collector()
    with SocketserverUpper(events, port=0, mode="thread") as server:
        with connect(server.address, timeout=10) as big, connect(server.address) as silent:
            line = b"x" * (1 << 20) + b"\n"
            big.sendall(line)
            got = b""
            while not got.endswith(b"\n") and len(got) <= len(line):
                chunk = big.recv(1 << 16)
                assert chunk, got[-20:]
                got += chunk
            assert got == line.upper()
            events.wait_for(Connected, 2)
            silent.settimeout(0.5)
            with pytest.raises(TimeoutError):  # nothing closes it
                silent.recv(1)
        events.wait_for(Disconnected, 2)
    assert [e.length for e in events.of(LineEvent)] == [1 << 20]


@pytest.mark.parametrize("mode", MODES)
def test_stop_closes_open_connections_after_the_grace(mode: str) -> None:
    events = Collector()
    server = SocketserverUpper(events, port=0, mode=mode).start()
    try:
        sock = connect(server.address)
        assert exchange(sock, b"hi\n") == b"HI\n"
        events.wait_for(Connected)
        assert server.busy() == 1  # every open connection counts as busy
        started = time.monotonic()
        server.stop(grace=0.3)
        took = time.monotonic() - started
    finally:
        server.stop()
    assert recv_all(sock) == b""  # closed by the server
    sock.close()
    assert 0.3 <= took < 4.0
    gone = events.of(Disconnected)
    assert [(g.reason, g.lines) for g in gone] == [("server stopping", 1)]
    assert server.summary().counts["connections"] == 1
    if mode == "fork":
        assert children(os.getpid()) == [] and zombies(os.getpid()) == []


@pytest.mark.parametrize("mode", MODES)
def test_count_stops_after_n_connections(mode: str) -> None:
    events = Collector()
    with SocketserverUpper(events, port=0, mode=mode, count=2) as server:
        for n in range(2):
            with connect(server.address) as sock:
                assert exchange(sock, b"n%d\n" % n) == b"N%d\n" % n
                sock.sendall(b"\n")
                assert recv_all(sock) == b""
        assert server.wait(10)
    assert server.summary().counts == {"connections": 2, "lines": 2}


def test_quiet_logs_nothing_but_counts() -> None:
    events = Collector()
    with SocketserverUpper(events, port=0, mode="fork", quiet=True, count=1) as server:
        with connect(server.address) as sock:
            assert exchange(sock, b"q\n") == b"Q\n"
            sock.sendall(b"\n")
            assert recv_all(sock) == b""
        assert server.wait(10)  # the child's report came through the parent's reader
    assert server.summary().counts == {"connections": 1, "lines": 1}
    assert [type(e) for e in events.events] == [Listening]


def test_ipv6_and_a_taken_port() -> None:
    events = Collector()
    with SocketserverUpper(events, host="::1", port=0, mode="sync") as server:
        assert server.address[0] == "::1"
        with connect(server.address) as sock:
            assert exchange(sock, b"six\n") == b"SIX\n"
            sock.sendall(b"\n")
        with pytest.raises(Exception, match=r"cannot listen on \[::1\]:\d+"):
            SocketserverUpper(Collector(), host="::1", port=server.address[1]).start()
    assert not [e for e in events.events if isinstance(e, Notice)]

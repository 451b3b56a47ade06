"""upper-server through the service API on port 0, in every mode."""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

import pytest

from netkit.events import Listening, Notice
from netkit.events.upper_server import (
    ClientWaiting,
    Connected,
    Disconnected,
    LineEvent,
    Rejected,
    UpperDatagram,
)
from netkit.protocols.upper import BUSY_REPLY
from netkit.services.upper import UpperServer
from tests.proc import zombies
from tests.sink import Collector
from tests.stream_util import connect, recv_all, recv_line

ALL = ["sync", "thread", "fork", "async", "async-asyncio", "prefork"]
CONCURRENT = ["thread", "fork", "async", "async-asyncio", "prefork"]


def make(events: Collector, mode: str, **kw: object) -> UpperServer:
    if mode == "async-asyncio":
        kw.setdefault("loop", "asyncio")
        mode = "async"
    if mode == "prefork":
        kw.setdefault("prefork", 4)
        mode = "fork"
    return UpperServer(events, port=0, mode=mode, **kw)  # type: ignore[arg-type]


def exchange(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    return recv_line(sock)


@pytest.mark.parametrize("mode", ALL)
def test_lines_come_back_upper_cased_with_their_ending(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        assert isinstance(events.events[0], Listening)
        with connect(server.address) as sock:
            assert exchange(sock, b"hello\r\n") == b"HELLO\r\n"
            assert exchange(sock, b"mIxEd 123 \xc3\xa9\n") == b"MIXED 123 \xc3\xa9\n"
            sock.sendall(b"split ")
            assert exchange(sock, b"line\n") == b"SPLIT LINE\n"
            sock.sendall(b"\r\nnot served\n")
            assert recv_all(sock) == b""  # the empty line ended the session
        (gone,) = events.wait_for(Disconnected, 1)
    assert gone.reason == "empty line" and gone.lines == 3
    lines = [e.data for e in events.of(LineEvent)]
    assert lines == [b"hello", b"mIxEd 123 \xc3\xa9", b"split line"]
    assert server.summary().counts["lines"] == 3


@pytest.mark.parametrize("mode", ALL)
def test_eof_ends_the_session(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        with connect(server.address) as sock:
            assert exchange(sock, b"a\n") == b"A\n"
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b""
        assert events.wait_for(Disconnected, 1)[0].reason == "eof"


def test_sync_serves_one_client_at_a_time_and_says_who_waits() -> None:
    events = Collector()
    with make(events, "sync") as server:
        with connect(server.address) as first, connect(server.address) as second:
            assert exchange(first, b"one\n") == b"ONE\n"
            second.sendall(b"two\n")
            (waiting,) = events.wait_for(ClientWaiting, 1)
            assert waiting.peer == f"127.0.0.1:{second.getsockname()[1]}"
            assert waiting.serving == f"127.0.0.1:{first.getsockname()[1]}"
            # the second client is queued: nothing for it while the first stays
            assert exchange(first, b"still\n") == b"STILL\n"
            assert select.select([second], [], [], 0)[0] == []
            first.sendall(b"\r\n")
            assert recv_line(second) == b"TWO\n"  # served once the first left


@pytest.mark.parametrize("mode", CONCURRENT)
def test_two_clients_are_served_at_once(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        with connect(server.address) as first, connect(server.address) as second:
            assert exchange(first, b"one\n") == b"ONE\n"
            assert exchange(second, b"two\n") == b"TWO\n"
            assert exchange(first, b"again\n") == b"AGAIN\n"
        assert not events.of(ClientWaiting)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("mode", ALL)
def test_client_aborting_mid_line_does_not_disturb_the_server(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        sock = connect(server.address)
        assert exchange(sock, b"x\n") == b"X\n"
        sock.sendall(b"half a li")
        _reset(sock)
        gone = events.wait_for(Disconnected, 1)[0]
        assert gone.reason in ("reset", "eof") and gone.lines == 1
        with connect(server.address) as sock:
            assert exchange(sock, b"next\n") == b"NEXT\n"


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async-asyncio"])
def test_200_idle_connections_and_a_new_client_is_served(mode: str) -> None:
    events = Collector()
    idle: list[socket.socket] = []
    with make(events, mode) as server:
        try:
            for _ in range(200):
                idle.append(connect(server.address))
            events.wait_for(Connected, 200, timeout=60)
            with connect(server.address, timeout=10) as sock:
                assert exchange(sock, b"still here\n") == b"STILL HERE\n"
        finally:
            for sock in idle:
                sock.close()
        events.wait_for(Disconnected, 201, timeout=60)
        if mode == "fork":
            assert zombies(os.getpid()) == []
    assert server.summary().counts["connections"] == 201


@pytest.mark.parametrize("mode", ALL)
def test_a_1mib_line_is_rejected_and_the_server_goes_on(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        sock = connect(server.address)
        errors: list[OSError] = []

        def push() -> None:
            try:
                sock.sendall(b"x" * (1 << 20) + b"\n")
            except OSError as exc:  # the server may reset us: that is fine
                errors.append(exc)

        pusher = threading.Thread(target=push)
        pusher.start()
        try:
            reply = recv_line(sock)
        except ConnectionResetError:
            reply = b"(reset)"
        pusher.join(20)
        sock.close()
        assert reply.startswith(b"ERROR line longer than 65536 bytes") or reply == b"(reset)"
        gone = events.wait_for(Disconnected, 1)[0]
        assert gone.reason == "line too long"
        with connect(server.address) as other:
            assert exchange(other, b"ok\n") == b"OK\n"
    assert server.summary().counts["line_too_long"] == 1


@pytest.mark.parametrize("mode", ["fork", "prefork"])
def test_fork_children_are_reaped(mode: str) -> None:
    events = Collector()
    with make(events, mode) as server:
        for i in range(5):
            with connect(server.address) as sock:
                assert exchange(sock, b"z\n") == b"Z\n"
                sock.sendall(b"\n")
                assert recv_all(sock) == b""
            events.wait_for(Disconnected, i + 1)
            assert zombies(os.getpid()) == []
    assert zombies(os.getpid()) == []


@pytest.mark.parametrize("mode", ["fork", "prefork"])
def test_a_burst_of_lines_is_logged_whole_and_in_order(mode: str) -> None:
    # a child reports the lines of each chunk it reads in one write: a burst
    # fills the report pipe, so the parent reads many reports at once (and
    # one cut at the end of a read, completed by the next)
    lines = [b"line %05d of the burst, logged in order" % i for i in range(3000)]
    burst = b"".join(line + b"\n" for line in lines)
    events = Collector()
    with make(events, mode) as server:
        with connect(server.address) as sock:
            sock.sendall(burst + b"\n")  # then an empty line: the server closes
            assert recv_all(sock) == burst.upper()
        [gone] = events.wait_for(Disconnected, 1)
    assert [e.data for e in events.of(LineEvent)] == lines
    assert (gone.lines, gone.reason) == (3000, "empty line")


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async-asyncio"])
def test_a_signal_that_lands_on_another_thread_still_ends_the_grace(mode: str) -> None:
    # a second Ctrl-C (force_stop) while stop() waits out --grace: Python runs
    # a handler in the main thread only, and the kernel may hand the signal to
    # any thread; the main thread must not sit in one long wait meanwhile
    import signal
    import time

    events = Collector()
    server = make(events, mode)
    previous = signal.signal(signal.SIGUSR1, lambda _sig, _frame: server.force_stop())
    try:
        with connect(server.start().address) as sock:
            assert exchange(sock, b"one\nhalf") == b"ONE\n"  # busy: a line begun

            def second_signal() -> None:
                for _ in range(1000):  # until the stop has begun (at most 10 s)
                    if server.stopping:
                        break
                    threading.Event().wait(0.01)
                signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # to this thread

            helper = threading.Thread(target=second_signal)
            helper.start()
            started = time.monotonic()
            server.stop(grace=30)
            took = time.monotonic() - started
            helper.join(10)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert took < 15  # not the 30 s of grace
    assert server.forced


def test_prefork_replaces_a_worker_that_dies() -> None:
    events = Collector()
    with make(events, "prefork", prefork=2) as server:
        with connect(server.address) as sock:
            assert exchange(sock, b"a\n") == b"A\n"
            import signal

            from tests.proc import children

            workers = children(os.getpid())
            assert len(workers) >= 2
            os.kill(workers[0], signal.SIGKILL)
            events.wait_for(Notice, where=lambda e: "exited" in e.message)  # worker replaced
        for _ in range(3):
            with connect(server.address) as sock:
                assert exchange(sock, b"b\n") == b"B\n"
    assert zombies(os.getpid()) == []


@pytest.mark.parametrize("mode", ALL)
def test_idle_timeout_closes_the_connection(mode: str) -> None:
    events = Collector()
    with make(events, mode, idle_timeout=0.2) as server:
        with connect(server.address) as sock:
            assert exchange(sock, b"a\n") == b"A\n"
            assert recv_all(sock) == b""  # closed by the server
        assert events.wait_for(Disconnected, 1)[0].reason == "idle timeout"


@pytest.mark.parametrize("mode", ALL)
def test_a_client_that_never_reads_its_replies_is_closed_after_the_idle_timeout(
    mode: str,
) -> None:
    """It cannot hold its slot for good: its replies fill the socket buffers and
    the server's, reading stops, and the idle timeout ends it like a silent one."""
    events = Collector()
    with make(events, mode, idle_timeout=0.5) as server:
        with connect(server.address, timeout=0.2) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sent, deadline = 0, time.monotonic() + 30
            try:  # until the server stops reading (bounded in bytes and time)
                while sent < 256 << 20 and time.monotonic() < deadline:
                    sent += sock.send(b"x" * 1023 + b"\n")
            except TimeoutError:
                pass
            assert sent < 256 << 20, "the server read 256 MiB it could not answer"
            assert time.monotonic() < deadline, "the server went on reading for 30 s"
            (gone,) = events.wait_for(Disconnected, 1, timeout=10)
        assert gone.reason == "idle timeout"


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async-asyncio"])
def test_max_clients_turns_the_next_client_away(mode: str) -> None:
    events = Collector()
    with make(events, mode, max_clients=1) as server:
        with connect(server.address) as first:
            assert exchange(first, b"a\n") == b"A\n"
            with connect(server.address) as second:
                assert recv_all(second) == BUSY_REPLY
            events.wait_for(Rejected, 1)
            assert exchange(first, b"b\n") == b"B\n"


@pytest.mark.parametrize("mode", ALL)
def test_stop_closes_open_connections_quickly(mode: str) -> None:
    events = Collector()
    server = make(events, mode, grace=0.5).start()
    socks = [connect(server.address) for _ in range(20)]
    try:
        assert exchange(socks[0], b"a\n") == b"A\n"
        socks[1].sendall(b"partial")
        server.stop(0.5)
        for sock in socks:
            try:
                assert recv_all(sock) == b""  # closed (EOF) ...
            except ConnectionResetError:
                pass  # ... or reset: unread bytes were pending (the partial line)
    finally:
        for sock in socks:
            sock.close()
    assert zombies(os.getpid()) == []


@pytest.mark.parametrize("mode", ALL)
def test_count_stops_after_n_connections(mode: str) -> None:
    events = Collector()
    with make(events, mode, count=2) as server:
        for _ in range(2):
            with connect(server.address) as sock:
                assert exchange(sock, b"q\n") == b"Q\n"
                sock.sendall(b"\n")
        assert server.wait(10)


def test_udp_upper_cases_each_datagram() -> None:
    events = Collector()
    with UpperServer(events, port=0, udp=True) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for data in (b"hello", b"", b"a\nb\xff"):
                sock.sendto(data, server.address)
                assert sock.recvfrom(100)[0] == data.upper()
        events.wait_for(UpperDatagram, 3)


def test_ipv6() -> None:
    events = Collector()
    with UpperServer(events, host="::1", port=0, mode="async") as server:
        with socket.create_connection(("::1", server.address[1]), timeout=5) as sock:
            assert exchange(sock, b"v6\n") == b"V6\n"
        assert events.wait_for(Connected, 1)[0].peer.startswith("[::1]:")

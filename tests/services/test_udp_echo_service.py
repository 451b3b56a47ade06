"""udp-echo services on port 0 through the service API: server, client, loop guard."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from netkit.events import Listening, Notice
from netkit.events.udp_echo import Datagram, Reply
from netkit.net import NetError
from netkit.services.udp_echo import UdpEchoServer, read_lines, send_messages
from tests.sink import Collector


def exchange(
    port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 5, bind: str | None = None
) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        if bind is not None:
            s.bind((bind, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(data)
        return s.recv(70_000)


def test_upper_by_default_and_events() -> None:
    sink = Collector()
    with UdpEchoServer(sink, port=0) as server:
        host, port = server.address
        assert (host, port != 0) == ("127.0.0.1", True)
        assert exchange(port, b"hello \xff w\xc3\xb6rld") == b"HELLO \xff W\xc3\xb6RLD"
        [ev] = sink.wait_for(Datagram)
    assert isinstance(sink.events[0], Listening) and sink.events[0].port == port
    assert (ev.size, ev.data, ev.replied, ev.dropped) == (
        14,
        b"hello \xff w\xc3\xb6rld",
        True,
        None,
    )
    assert server.counts["received"] == 1 and server.counts["replied"] == 1


def test_plain_echo_and_largest_datagram() -> None:
    with UdpEchoServer(Collector(), port=0, upper=False, quiet=True) as server:
        big = (bytes(range(256)) * 256)[:65_507]  # the largest UDP payload over IPv4
        assert len(big) == 65_507
        assert exchange(server.address[1], big) == big
        assert exchange(server.address[1], b"") == b""


def test_ipv6() -> None:
    with UdpEchoServer(Collector(), host="::1", port=0, quiet=True) as server:
        assert server.address[0] == "::1"
        assert exchange(server.address[1], b"six", host="::1") == b"SIX"


def test_count_requests_stop() -> None:
    sink = Collector()
    with UdpEchoServer(sink, port=0, count=2, quiet=True) as server:
        for i in range(2):
            exchange(server.address[1], b"x%d" % i)
        assert server.wait(5)
    assert server.counts["received"] == 2


def test_count_counts_answered_datagrams_only() -> None:
    sink = Collector()
    with UdpEchoServer(sink, port=0, count=1) as server:
        own = server._sock
        assert own is not None
        own.sendto(b"not answered", server.address)  # dropped (own address): not counted
        sink.wait_for(Datagram, where=lambda e: e.dropped == "self")
        assert not server.stop_requested
        assert exchange(server.address[1], b"answered") == b"ANSWERED"
        assert server.wait(5)
    assert (server.counts["received"], server.counts["replied"]) == (2, 1)


def test_never_answers_its_own_address() -> None:
    sink = Collector()
    server = UdpEchoServer(sink, port=0)
    with server:
        own = server._sock
        assert own is not None
        own.sendto(b"loop?", server.address)  # from the server's own address and port
        [ev] = sink.wait_for(Datagram)
        assert (ev.replied, ev.dropped) == (False, "self")
        assert exchange(server.address[1], b"still serving") == b"STILL SERVING"
    assert server.counts["dropped_self"] == 1
    assert any(isinstance(e, Notice) and "own address" in e.message for e in sink.events)


def test_rate_limit_drops_and_counts() -> None:
    sink = Collector()
    with (
        UdpEchoServer(sink, port=0, rate=1) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
    ):
        s.connect(server.address)
        t0 = time.monotonic()
        for i in range(10):
            s.send(b"%d" % i)
        # a probe from another source address (its own rate bucket), sent after the ten:
        # once it is answered, the ten were handled
        assert exchange(server.address[1], b"probe", bind="127.0.0.2") == b"PROBE"
        elapsed = time.monotonic() - t0
        # drops are logged at most once a second (the rest are counted, not logged one by one)
        drop_events = [e for e in sink.of(Datagram) if e.dropped]
        assert 1 <= len(drop_events) <= 1 + elapsed
    assert server.counts["received"] == 11
    assert 2 <= server.counts["replied"] < 11
    assert server.counts["dropped_rate"] == 11 - server.counts["replied"]


def test_stop_is_prompt_while_idle() -> None:
    server = UdpEchoServer(Collector(), port=0)
    server.start()
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2
    assert server._thread is not None and not server._thread.is_alive()


# -- client ---------------------------------------------------------------


def test_client_round_trip() -> None:
    sink = Collector()
    with UdpEchoServer(Collector(), port=0, quiet=True) as server:
        n = send_messages(sink, [b"one", b"two", b""], port=server.address[1], timeout=5)
    assert n == 3
    assert [r.data for r in sink.of(Reply)] == [b"ONE", b"TWO", b""]
    assert all(r.peer == f"127.0.0.1:{server.address[1]}" for r in sink.of(Reply))


def test_client_refused_is_fast() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(NetError, match="no server listening"):
        send_messages(Collector(), [b"x"], port=port, timeout=10)
    assert time.monotonic() - t0 < 5  # well before the 10 s timeout


def test_client_timeout_and_retries() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(NetError, match=r"no reply .* within 0.2 s \(3 tries\)"):
            send_messages(Collector(), [b"x"], port=silent.getsockname()[1], timeout=0.2, retries=2)
        silent.settimeout(5)
        assert [silent.recv(10) for _ in range(3)] == [b"x"] * 3  # sent three times


def test_client_ignores_other_sources_and_late_replies() -> None:
    """A reply from another address is dropped; a late duplicate reply is not taken for the next."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(5)
        sink = Collector()
        errors: list[BaseException] = []

        def client() -> None:
            try:
                send_messages(sink, [b"a", b"b"], port=srv.getsockname()[1], timeout=5)
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=client)
        t.start()
        data, peer = srv.recvfrom(10)
        assert data == b"a"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"FORGED", peer)  # another source port: ignored by the kernel
        srv.sendto(b"A", peer)
        srv.sendto(b"A", peer)  # a duplicate reply to the first message
        assert srv.recvfrom(10)[0] == b"b"
        srv.sendto(b"B", peer)
        t.join(10)
    assert not errors
    assert [r.data for r in sink.of(Reply)] == [b"A", b"B"]


def test_read_lines() -> None:
    import io

    assert list(read_lines(io.BytesIO(b"a\nb\r\n\nlast"))) == [b"a", b"b", b"", b"last"]


# -- the --quiet fast path (recvmmsg/sendmmsg batches) -------------------------


def test_fast_path_is_available_on_linux() -> None:
    import sys

    from netkit.services import _mmsg

    assert _mmsg.available() == sys.platform.startswith("linux")


@pytest.mark.parametrize("upper", [True, False])
def test_quiet_batches_answer_every_client(upper: bool) -> None:
    """Many datagrams queued at once (one recvmmsg batch and more), each to its own source."""
    with UdpEchoServer(Collector(), port=0, quiet=True, upper=upper) as server:
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
        try:
            for i, c in enumerate(clients):
                c.settimeout(5)
                c.connect(server.address)
                for j in range(10):
                    c.send(b"client %d msg %d \xff" % (i, j))
            for i, c in enumerate(clients):
                got = sorted(c.recv(100) for _ in range(10))
                want = sorted(b"client %d msg %d \xff" % (i, j) for j in range(10))
                assert got == [w.upper() if upper else w for w in want]
        finally:
            for c in clients:
                c.close()
    assert server.counts["received"] == server.counts["replied"] == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_quiet_path_guards_its_own_address(host: str) -> None:
    # (on IPv6 the host sits after the flow information in the socket
    # address: the quiet path once compared those bytes too, and answered itself)
    server = UdpEchoServer(Collector(), host=host, port=0, quiet=True)
    with server:
        assert server._sock is not None
        server._sock.sendto(b"loop?", server.address)
        # answered in order: once this reply is back, the datagram above was handled
        assert exchange(server.address[1], b"after", host=host) == b"AFTER"
    assert server.counts["dropped_self"] == 1
    assert server.counts["received"] == 2 and server.counts["replied"] == 1

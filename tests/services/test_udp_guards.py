"""Every UDP responder of netkit has the same guards: pairwise, no reply loops.

A datagram forged "from" one netkit UDP service to another (sent from the
first one's own socket) used to set them answering each other for good;
each used to answer a datagram from its own address forever too.  Now the
guards of :class:`netkit.protocols.echo.ReplyGuard`, applied by the one
datagram loop, end every such loop within a bounded number of answers.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable

import pytest

from netkit.events import Event, Notice
from netkit.events.udp_echo import Datagram
from netkit.protocols.echo import DROP_REASONS, LOOP_STREAK
from netkit.services.core import Server
from netkit.services.tcp_time import TimeServer
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.sink import Collector

Make = Callable[[Collector], Server]

SERVICES: dict[str, Make] = {
    "udp-echo": lambda sink: UdpEchoServer(sink, port=0),
    "udp-echo-plain": lambda sink: UdpEchoServer(sink, port=0, upper=False),
    "tcp-time-daytime": lambda sink: TimeServer(sink, port=0, protocol="daytime", udp=True),
    "tcp-time-time": lambda sink: TimeServer(sink, port=0, protocol="time", udp=True),
    "upper-server": lambda sink: UpperServer(sink, port=0, udp=True),
}
PAIRS = list(itertools.combinations_with_replacement(SERVICES, 2))
#: both sides together, at most: each answers one streak before one of them stops
BOUND = 3 * LOOP_STREAK


def answered(server: Server) -> int:
    counts = server.counts
    return counts["replied"] if isinstance(server, UdpEchoServer) else counts["handled"]


def is_drop(event: Event, reason: str) -> bool:
    if isinstance(event, Datagram):
        return event.dropped == reason
    return isinstance(event, Notice) and DROP_REASONS[reason] in event.message


def own_socket(server: Server) -> socket.socket:
    sock = getattr(server, "_sock", None)
    assert isinstance(sock, socket.socket)
    return sock


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_forged_datagram_between_two_services_gets_bounded_answers(a: str, b: str) -> None:
    sink = Collector()  # both log here
    first, second = SERVICES[a](sink), SERVICES[b](sink)
    with first, second:
        own_socket(first).sendto(b"hello", second.address)  # "from" first, to second
        # one of them spots the loop and stops answering: then nothing is in flight
        sink.wait_for(Event, 1, 10.0, lambda e: is_drop(e, "loop"))
    total = answered(first) + answered(second)
    assert 1 <= total <= BOUND, (answered(first), answered(second))
    assert first.counts["dropped_loop"] + second.counts["dropped_loop"] == 1


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_never_answers_its_own_address(name: str) -> None:
    sink = Collector()
    server = SERVICES[name](sink)
    with server:
        own_socket(server).sendto(b"me?", server.address)
        sink.wait_for(Event, 1, 5.0, lambda e: is_drop(e, "self"))
    assert answered(server) == 0
    assert server.counts["dropped_self"] == 1


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_never_answers_a_privileged_port(name: str) -> None:
    sink = Collector()
    server = SERVICES[name](sink)
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as low:
        for port in range(1023, 900, -1):  # root here (see PEERS.md); one of these is free
            try:
                low.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        low.sendto(b"from a server port", server.address)
        sink.wait_for(Event, 1, 5.0, lambda e: is_drop(e, "low_port"))
    assert answered(server) == 0
    assert server.counts["dropped_low_port"] == 1

"""Issue 14 item 8: ``--host ::`` serves IPv6 and IPv4 clients (dual-stack, as
``ncat -l`` and socat's ``UDP6-LISTEN`` do) and says so; ``-6 --host ::`` is
IPv6 only and says that.  Every server, real processes, real sockets."""

from __future__ import annotations

import socket

import pytest

from tests.helpers import Server

SERVERS = {
    "udp-echo": (["udp-echo", "serve"], socket.SOCK_DGRAM, b"hi", b"HI"),
    "tcp-time udp": (["tcp-time", "serve", "--udp"], socket.SOCK_DGRAM, b"", None),
    "tcp-time tcp": (["tcp-time", "serve"], socket.SOCK_STREAM, b"", None),
    "upper-server tcp": (["upper-server", "serve"], socket.SOCK_STREAM, b"hi\r\n", b"HI\r\n"),
    "upper-server udp": (["upper-server", "serve", "--udp"], socket.SOCK_DGRAM, b"hi", b"HI"),
}


def _ask(host: str, port: int, kind: socket.SocketKind, data: bytes) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.settimeout(5)
        s.connect((host, port))
        if kind == socket.SOCK_DGRAM:
            s.send(data)
            return s.recv(70_000)
        if data:
            s.sendall(data)
        return s.recv(70_000)


@pytest.mark.parametrize("name", list(SERVERS))
def test_wildcard_v6_serves_ipv4_too(name: str) -> None:
    argv, kind, data, expect = SERVERS[name]
    with Server(*argv, "--host", "::", "--port", "0", "--json") as srv:
        assert srv.listening["host"] == "::" and srv.listening["dual_stack"] is True
        for host in ("127.0.0.1", "::1"):
            reply = _ask(host, srv.port, kind, data)
            assert reply == expect if expect is not None else len(reply) > 0, (host, reply)


@pytest.mark.parametrize("name", ["udp-echo", "upper-server tcp"])
def test_banner_names_the_choice(name: str) -> None:
    argv = SERVERS[name][0]
    with Server(*argv, "--host", "::", "--port", "0", human=True) as srv:
        transport = srv.listening["transport"]
        line = srv.first_line
        assert line.startswith(f"listening on {transport} [::]:{srv.port}"), line
        assert line.rstrip().endswith(", IPv6 and IPv4 (Ctrl-C to stop)"), line
    with Server(*argv, "-6", "--host", "::", "--port", "0", human=True) as srv:
        assert srv.first_line.rstrip().endswith(", IPv6 only (Ctrl-C to stop)"), srv.first_line


@pytest.mark.parametrize("name", ["udp-echo", "upper-server tcp"])
def test_minus_6_is_ipv6_only(name: str) -> None:
    argv, kind, data, expect = SERVERS[name]
    with Server(*argv, "-6", "--host", "::", "--port", "0", "--json") as srv:
        assert srv.listening["dual_stack"] is False
        assert _ask("::1", srv.port, kind, data) == expect
        with pytest.raises(ConnectionRefusedError):
            _ask("127.0.0.1", srv.port, kind, data)


def test_other_addresses_carry_no_dual_stack_field() -> None:
    for host in ("127.0.0.1", "::1"):
        with Server("udp-echo", "serve", "--host", host, "--port", "0", "--json") as srv:
            assert "dual_stack" not in srv.listening


def test_creosote_listen_udp_and_tcp_dual_stack() -> None:
    with Server("creosote", "listen", "--udp", "--tcp", "-H", "::", "-p", "0", "--json") as srv:
        second = srv.next_event()
        assert (srv.listening["transport"], second["transport"]) == ("udp", "tcp")
        assert srv.listening["dual_stack"] is True and second["dual_stack"] is True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"over ipv4", ("127.0.0.1", srv.port))
        ev = srv.next_event()
        assert ev["event"] == "message" and ev["text"] == "over ipv4", ev
        assert ev["peer"].startswith("127.0.0.1:"), ev  # not [::ffff:127.0.0.1]


@pytest.mark.parametrize(
    ("mode", "impl"),
    [
        ("thread", "netkit"),
        ("thread", "socketserver"),
        ("sync", "netkit"),
        ("fork", "netkit"),  # the forker process formats the peer itself
        ("fork --prefork 2", "netkit"),
        ("async", "netkit"),
        ("async --loop asyncio", "netkit"),  # the lean transport formats the accepted address
    ],
)
def test_ipv4_client_of_a_dual_stack_socket_is_shown_as_ipv4(mode: str, impl: str) -> None:
    argv = ["upper-server", "serve", "--mode", *mode.split(), "--impl", impl]
    with Server(*argv, "--host", "::", "--port", "0", "--json") as srv:
        assert srv.listening["dual_stack"] is True, srv.listening
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"hi\n")
            assert s.recv(100) == b"HI\n"
            local = s.getsockname()
            ev = srv.next_event()
            assert ev["event"] == "connect", ev
            assert ev["peer"] == f"127.0.0.1:{local[1]}", ev

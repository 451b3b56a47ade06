"""TurnAway: the busy reply, a FIN after it, the client read until it ends, bounded."""

from __future__ import annotations

import socket

from netkit.services.blocking import TurnAway


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    return ours, theirs


def test_the_reply_then_eof_and_the_socket_kept_until_the_client_closes() -> None:
    watched: set[int] = set()
    away = TurnAway(b"BUSY\r\n", watched.add, watched.discard)
    ours, theirs = _pair()
    with theirs:
        theirs.sendall(b"a line sent at once\n")
        away.start(ours, now=0.0)
        assert watched == {ours.fileno()} and len(away) == 1
        assert theirs.recv(100) == b"BUSY\r\n" and theirs.recv(100) == b""  # then EOF
        away.readable(ours.fileno())  # reads the line: still open, the client has not closed
        assert len(away) == 1 and ours.fileno() != -1
        theirs.close()
        away.readable(ours.fileno())
    assert len(away) == 0 and not watched and ours.fileno() == -1


def test_closed_when_its_time_is_up_or_past_max_bytes() -> None:
    watched: set[int] = set()
    away = TurnAway(b"BUSY\r\n", watched.add, watched.discard, seconds=0.5, max_bytes=10)
    late, late_peer = _pair()
    loud, loud_peer = _pair()
    with late_peer, loud_peer:
        away.start(late, now=10.0)
        away.start(loud, now=10.2)
        assert away.next_due() == 10.5
        loud_peer.sendall(b"x" * 11)
        away.readable(loud.fileno())
        assert loud.fileno() == -1 and len(away) == 1
        away.expire(10.49)
        assert len(away) == 1
        away.expire(10.5)
        assert late.fileno() == -1 and len(away) == 0 and not watched
        assert away.next_due() is None


def test_past_the_limit_the_reply_is_sent_and_the_socket_closed_at_once() -> None:
    watched: set[int] = set()
    away = TurnAway(b"BUSY\r\n", watched.add, watched.discard, limit=1)
    first, first_peer = _pair()
    second, second_peer = _pair()
    with first_peer, second_peer:
        away.start(first, now=0.0)
        away.start(second, now=0.0)
        assert second.fileno() == -1 and len(away) == 1
        assert second_peer.recv(100) == b"BUSY\r\n"
        away.close_all()
    assert first.fileno() == -1 and not watched

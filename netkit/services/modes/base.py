"""The interface every upper-server mode implements, and what the blocking ones share."""

from __future__ import annotations

import _socket
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from netkit import net
from netkit.protocols.upper import BUSY_REPLY, UpperSession
from netkit.services.blocking import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    RECV_SIZE,
    TURN_AWAY_LIMIT,
    LineDeadline,
    TurnAway,
    close_quietly,
    drain,
    preset_timeouts,
    serve_blocking,
    since,
)
from netkit.services.loops import Acceptor, Loop

if TYPE_CHECKING:
    from netkit.services.upper import UpperServer


class Mode:
    """How upper-server serves its TCP connections.

    :meth:`run` is called in the server's thread and returns once the
    server's stop is requested and every connection is closed (or given up
    on after ``server.grace``).  The default runs the server's
    :class:`~netkit.services.loops.Loop` with an
    :class:`~netkit.services.loops.Acceptor` that turns away clients past
    ``--max-clients`` and hands each other one to :meth:`serve_connection`.

    Override:

    - :meth:`serve_connection` (required): serve one accepted connection,
      reporting through ``server.opened`` (once whoever serves it is known,
      before it may end) and ``server.closed`` when it ends.  Called in the
      server's thread; must not block it for long.
    - :meth:`stop`: close what is still open, within ``server.grace``;
      called in the server's thread once the loop ended.
    - :meth:`prepare`: called in the thread that starts the server, before
      the ``listening`` event (what may fail is best failed there).
    - :meth:`configure_listener`: options for the listening socket before
      it listens (``preset_timeouts`` for a mode using ``serve_blocking``).
    - :meth:`setup`: watch more files or set timers on the loop.
    - :meth:`run`: the whole loop, for a mode with a loop of its own.
    - :meth:`create`: which class serves a given configuration.
    """

    name: ClassVar[str] = ""

    @staticmethod
    def default_max_clients() -> int:
        """The --max-clients of this mode when none is given."""
        return 256

    def __init__(self, server: UpperServer) -> None:
        self.server = server
        self.loop: Loop | None = None
        #: the listener carries the idle timeout for the sockets it accepts
        #: (:func:`~netkit.services.blocking.preset_timeouts`)
        self.timeouts_preset = False

    @classmethod
    def create(cls, server: UpperServer) -> Mode:
        return cls(server)

    def configure_listener(self, sock: socket.socket) -> None:
        """The listening socket, bound, before it listens: nothing by default.

        What is set here is inherited by every connection it accepts (on
        Linux), even by one that arrives before :meth:`run` starts.
        """

    def preset_timeouts(self, sock: socket.socket) -> None:
        """For :meth:`configure_listener`: the accepted sockets get the idle
        timeout from the listener (no setsockopt per connection)."""
        self.timeouts_preset = preset_timeouts(sock, self.server.idle_timeout)

    def prepare(self) -> None:
        """Before ``listening``: nothing by default."""

    def setup(self, loop: Loop) -> None:
        """Before the loop starts: nothing by default."""

    def run(self) -> None:
        server = self.server
        loop = self.loop = Loop(server)
        self.turn_away = TurnAway(
            BUSY_REPLY, lambda fd: loop.add(fd, lambda: self.turn_away.readable(fd)), loop.remove
        )
        try:
            self.acceptor = Acceptor(loop, server.listener, self.accepted)
            self.setup(loop)
            loop.run()
            self.stop()
        finally:
            self.turn_away.close_all()
            loop.close()

    def accepted(self, conn: socket.socket, addr: Any) -> None:
        server = self.server
        peer = net.format_peer(addr)
        if server.open >= server.max_clients:
            self.reject(conn, peer)
            return
        self.serve_connection(conn, peer)

    def reject(self, conn: socket.socket, peer: str) -> None:
        """Past --max-clients: the busy reply, and the connection closed so
        the client reads it (:class:`~netkit.services.blocking.TurnAway`)."""
        due = self.turn_away.start(conn, time.monotonic())
        if due is not None:
            assert self.loop is not None
            self.loop.call_at(due, lambda: self.turn_away.expire(time.monotonic()))
        self.server.turned_away(peer)

    def serve_connection(self, conn: socket.socket, peer: str) -> None:
        raise NotImplementedError

    def serve_blocking(
        self,
        conn: _socket.socket,
        session: UpperSession,
        stopping: Callable[[], bool],
        idle_flag: list[bool],
        on_heard: Callable[[list[bytes]], None],
    ) -> str:
        """:func:`serve_blocking` with the server's timeouts."""
        server = self.server
        return serve_blocking(
            conn,
            session,
            server.idle_timeout,
            stopping,
            idle_flag,
            on_heard,
            server.line_timeout,
            timeouts_set=self.timeouts_preset,
        )

    def stop(self) -> None:
        """Close what is open: nothing by default."""

    def busy(self) -> int:
        """Connections a stop would wait for (up to ``--grace``): every open one by default."""
        return int(self.server.open)


__all__ = [
    "DRAIN_BYTES",
    "DRAIN_SECONDS",
    "RECV_SIZE",
    "TURN_AWAY_LIMIT",
    "LineDeadline",
    "Mode",
    "close_quietly",
    "drain",
    "preset_timeouts",
    "serve_blocking",
    "since",
]

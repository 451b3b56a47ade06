"""The interface every upper-server mode implements, and what the blocking ones share."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from netkit import net
from netkit.protocols.upper import END_TOO_LONG, UpperSession
from netkit.services.loops import Acceptor, Loop, set_io_timeouts, set_recv_timeout

if TYPE_CHECKING:
    from netkit.services.upper import UpperServer

RECV_SIZE = 65_536
#: after a too-long line: how long to read and drop what the client still sends
DRAIN_SECONDS = 0.5
DRAIN_BYTES = 4 << 20


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

    @classmethod
    def create(cls, server: UpperServer) -> Mode:
        return cls(server)

    def prepare(self) -> None:
        """Before ``listening``: nothing by default."""

    def setup(self, loop: Loop) -> None:
        """Before the loop starts: nothing by default."""

    def run(self) -> None:
        server = self.server
        loop = self.loop = Loop(server)
        try:
            self.acceptor = Acceptor(loop, server.listener, self.accepted)
            self.setup(loop)
            loop.run()
            self.stop()
        finally:
            loop.close()

    def accepted(self, conn: socket.socket, addr: Any) -> None:
        server = self.server
        peer = net.format_peer(addr)
        if server.open >= server.max_clients:
            server.reject(conn, peer)
            return
        self.serve_connection(conn, peer)

    def serve_connection(self, conn: socket.socket, peer: str) -> None:
        raise NotImplementedError

    def serve_blocking(
        self,
        conn: socket.socket,
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
        )

    def stop(self) -> None:
        """Close what is open: nothing by default."""

    def busy(self) -> int:
        """Connections a stop would wait for (up to ``--grace``): every open one by default."""
        return int(self.server.open)


def since(started: float) -> float:
    """A session's duration in seconds, as the events show it."""
    return round(time.monotonic() - started, 6)


class LineDeadline:
    """When the line a session is in the middle of must be complete (``--line-timeout``).

    Idle time alone lets a client hold a connection for good by trickling a
    byte now and then (slowloris); a line begun must also end in time.  The
    clock starts with the first byte of an incomplete line and starts again
    when a line completes.  No clock of its own: the caller passes the time.
    """

    __slots__ = ("_lines", "due", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.due: float | None = None
        self._lines = 0

    def update(self, session: UpperSession, now: float) -> float | None:
        """After a receive: the deadline of the pending line, or None when none is pending."""
        if session.idle:
            self.due = None
        elif self.due is None or session.lines != self._lines:
            self.due = now + self.timeout
            self._lines = session.lines
        return self.due

    def sooner(self, session: UpperSession, now: float, timer_at: float | None) -> float | None:
        """After a receive, for a mode with one timer per connection (firing at
        *timer_at*): the time to re-arm it for, when the pending line is due
        before that; None: leave it."""
        if self.due is None and session.idle:
            return None
        due = self.update(session, now)
        if due is not None and timer_at is not None and due < timer_at:
            return due
        return None


def serve_blocking(
    conn: socket.socket,
    session: UpperSession,
    idle_timeout: float,
    stopping: Callable[[], bool],
    idle_flag: list[bool] | None = None,
    on_heard: Callable[[list[bytes]], None] | None = None,
    line_timeout: float | None = None,
) -> str:
    """Serve one connection on a blocking socket; return why it ended.

    *idle_flag* (a one-element list) is set while waiting for a new line
    with nothing pending, so a stop request may close the connection then.
    *on_heard* gets the lines the session collected (``log_lines``).
    With *line_timeout*, a line begun must be complete within it.
    """
    conn.setblocking(True)
    set_io_timeouts(conn, idle_timeout)
    recv = conn.recv
    sendall = conn.sendall
    receive = session.receive
    line = LineDeadline(line_timeout) if line_timeout else None
    waits = idle_timeout  # the recv timeout set on the socket
    while True:
        if idle_flag is not None:
            idle_flag[0] = session.idle
        # checked after the flag is set: a stop that came before is seen here,
        # one that comes after sees the flag (and shuts the socket for reading)
        if stopping():
            return "server stopping"
        wait = idle_timeout
        if line is not None and line.due is not None:
            wait = min(idle_timeout, line.due - time.monotonic())
            if wait <= 0:
                return "line timeout"
        if wait != waits:  # only while a line is pending: a syscall per recv then
            set_recv_timeout(conn, wait)
            waits = wait
        try:
            data = recv(RECV_SIZE)
        except (BlockingIOError, TimeoutError):  # SO_RCVTIMEO, or the settimeout() fallback
            return "line timeout" if wait < idle_timeout else "idle timeout"
        except OSError:
            return "reset"
        finally:
            if idle_flag is not None:
                idle_flag[0] = False
        if not data and stopping():
            return "server stopping"
        # b"" (EOF) goes to the session too: it answers an unterminated last line
        reply = receive(data)
        if line is not None and (line.due is not None or not session.idle):
            line.update(session, time.monotonic())
        if on_heard is not None and session.heard:
            on_heard(session.take_heard())
        if reply:
            try:
                sendall(reply)
            except BlockingIOError:
                return "idle timeout"  # the client stopped reading
            except OSError:
                return "reset"
        end = session.end
        if end is not None:
            if end == END_TOO_LONG:
                drain(conn)
            return end


def drain(conn: socket.socket) -> None:
    """Half-close, then read and drop what the client still sends (bounded).

    Closing with unread data makes the kernel send a reset, which can
    destroy the error reply before the client reads it.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(DRAIN_SECONDS)
        deadline = time.monotonic() + DRAIN_SECONDS
        got = 0
        while got < DRAIN_BYTES and time.monotonic() < deadline:
            chunk = conn.recv(RECV_SIZE)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass


def close_quietly(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass

"""Serving one connection on a blocking socket: what the sync, thread and fork modes share.

Kept light on purpose (the standard library's ``socket``, ``struct`` and
``time``, and the sans-IO session): the small process that forks
``--mode fork``'s children (:mod:`netkit.services.modes._forker`) imports
it and next to nothing else, since what a fork costs grows with the memory
of the process that forks.
"""

from __future__ import annotations

import struct
import sys
import time
from _socket import SHUT_WR, SO_RCVTIMEO, SO_SNDTIMEO, SOL_SOCKET
from _socket import socket as Socket  # Socket's base: either works here

from netkit.protocols.upper import END_TOO_LONG, UpperSession

TYPE_CHECKING = False  # typing itself is not imported: it is large
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Linux: a socket from accept() is in blocking mode whatever the listener's
#: mode (BSD and macOS copy O_NONBLOCK from the listener), and Python only
#: changes that when it has a timeout of its own (``gettimeout()``)
_LINUX = _ACCEPT_CLEARS_NONBLOCK = sys.platform.startswith("linux")
RECV_SIZE = 65_536
#: after a too-long line: how long to read and drop what the client still sends
DRAIN_SECONDS = 0.5
DRAIN_BYTES = 4 << 20
#: connections turned away and still read from at once (:class:`TurnAway`)
TURN_AWAY_LIMIT = 32


def set_io_timeouts(sock: Socket, seconds: float) -> None:
    """Kernel-level recv/send timeouts on a blocking socket (no poll() per call).

    A recv() or send() that waits longer fails with EAGAIN (``BlockingIOError``).
    """
    set_recv_timeout(sock, seconds, send=True)


def set_recv_timeout(sock: Socket, seconds: float, *, send: bool = False) -> None:
    """The kernel-level recv timeout alone (and the send one with *send*)."""
    seconds = max(seconds, 0.001)  # 0 would mean "no timeout"
    sec = int(seconds)
    tv = struct.pack("@ll", sec, int((seconds - sec) * 1_000_000))
    try:
        sock.setsockopt(SOL_SOCKET, SO_RCVTIMEO, tv)
        if send:
            sock.setsockopt(SOL_SOCKET, SO_SNDTIMEO, tv)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        sock.settimeout(seconds)  # portable: poll() before each call


def preset_timeouts(listener: Socket, seconds: float) -> bool:
    """Give a listening socket the recv/send timeouts of the connections it accepts.

    Linux copies a listening socket's options into each socket accept()
    returns, so the two ``setsockopt`` calls per connection of
    :func:`set_io_timeouts` are made once here; pass ``timeouts_set=True``
    to :func:`serve_blocking` then.  Returns False (nothing set) elsewhere.
    A *blocking* accept() on the listener returns EAGAIN after *seconds*
    without a client.
    """
    if not _LINUX:
        return False
    seconds = max(seconds, 0.001)
    sec = int(seconds)
    tv = struct.pack("@ll", sec, int((seconds - sec) * 1_000_000))
    try:
        listener.setsockopt(SOL_SOCKET, SO_RCVTIMEO, tv)
        listener.setsockopt(SOL_SOCKET, SO_SNDTIMEO, tv)
    except OSError:  # pragma: no cover - Linux has both
        return False
    return True


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
    conn: Socket,
    session: UpperSession,
    idle_timeout: float,
    stopping: Callable[[], bool],
    idle_flag: list[bool] | None = None,
    on_heard: Callable[[list[bytes]], None] | None = None,
    line_timeout: float | None = None,
    *,
    timeouts_set: bool = False,
) -> str:
    """Serve one connection on a blocking socket; return why it ended.

    *idle_flag* (a one-element list) is set while waiting for a new line
    with nothing pending, so a stop request may close the connection then.
    *on_heard* gets the lines the session collected (``log_lines``).
    With *line_timeout*, a line begun must be complete within it.
    *timeouts_set*: the socket has *idle_timeout* as its recv and send
    timeouts already (from its listener: :func:`preset_timeouts`).
    """
    if conn.gettimeout() is not None or not _ACCEPT_CLEARS_NONBLOCK:
        conn.setblocking(True)  # (a syscall; on Linux an accepted socket is blocking already)
    if not timeouts_set:
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


def drain(conn: Socket) -> None:
    """Half-close, then read and drop what the client still sends (bounded).

    Closing with unread data makes the kernel send a reset, which can
    destroy the error reply before the client reads it.
    """
    try:
        conn.shutdown(SHUT_WR)
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


class TurnAway:
    """Connections turned away with *reply*, closed so that the client can read it.

    Closing a socket with unread data makes the kernel reset the connection,
    and the reset can destroy the reply before the client reads it: a client
    that sent its line at once (``echo hi | nc host port``) would see
    "connection reset" instead of why.  So :meth:`start` sends the reply and
    a FIN after it (``shutdown(SHUT_WR)``), and the socket stays open, read
    and dropped, until the client closes, *seconds* pass or *max_bytes* have
    come, whichever is first.  At most *limit* at once: past that a
    connection is closed at once (a flood of them costs no more descriptors).

    No loop of its own: the caller's loop watches :attr:`fds` (or is told
    of each by *watch* and *unwatch*), calls :meth:`readable` when one can
    be read and :meth:`expire` when :meth:`start` or :meth:`next_due` says.
    """

    def __init__(
        self,
        reply: bytes,
        watch: Callable[[int], None] | None = None,
        unwatch: Callable[[int], None] | None = None,
        *,
        limit: int = TURN_AWAY_LIMIT,
        seconds: float = DRAIN_SECONDS,
        max_bytes: int = DRAIN_BYTES,
    ) -> None:
        self.reply = reply
        self.watch = watch
        self.unwatch = unwatch
        self.limit = limit
        self.seconds = seconds
        self.max_bytes = max_bytes
        #: fd -> [socket, when it is closed at the latest, bytes read]
        self._open: dict[int, list[Any]] = {}
        #: the descriptors open (a live view)
        self.fds = self._open.keys()

    def __len__(self) -> int:
        return len(self._open)

    def start(self, sock: Socket, now: float) -> float | None:
        """Send the reply to *sock*, half-close it and read it until it ends:
        when to :meth:`expire` it (None: closed at once)."""
        try:
            sock.setblocking(False)
            sock.send(self.reply)
            full = len(self._open) >= self.limit
            if not full:
                sock.shutdown(SHUT_WR)
        except OSError:
            full = True
        if full:
            close_quietly(sock)
            return None
        fd = sock.fileno()
        due = now + self.seconds
        self._open[fd] = [sock, due, 0]
        if self.watch is not None:
            self.watch(fd)
        return due

    def readable(self, fd: int) -> None:
        """Read and drop what *fd* has; closed once it ends or sent too much."""
        entry = self._open.get(fd)
        if entry is None:
            return
        try:
            while True:
                data = entry[0].recv(RECV_SIZE)
                entry[2] += len(data)
                if not data or entry[2] > self.max_bytes:
                    break
        except BlockingIOError:
            return  # all read for now
        except OSError:
            pass
        self._close(fd)

    def next_due(self) -> float | None:
        """When :meth:`expire` should run next (None: nothing is open)."""
        return min((entry[1] for entry in self._open.values()), default=None)

    def expire(self, now: float) -> None:
        """Close those whose time is up."""
        for fd in [fd for fd, entry in self._open.items() if entry[1] <= now]:
            self._close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self._close(fd)

    def forget(self) -> None:
        """In a forked child: close this process's copies, leaving the connections be."""
        for entry in self._open.values():
            close_quietly(entry[0])  # (the parent's copy keeps the connection)
        self._open.clear()

    def _close(self, fd: int) -> None:
        entry = self._open.pop(fd)
        if self.unwatch is not None:
            self.unwatch(fd)
        close_quietly(entry[0])


def close_quietly(conn: Socket) -> None:
    try:
        conn.close()
    except OSError:
        pass

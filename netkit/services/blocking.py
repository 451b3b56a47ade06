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

#: Linux: a socket from accept() is in blocking mode whatever the listener's
#: mode (BSD and macOS copy O_NONBLOCK from the listener), and Python only
#: changes that when it has a timeout of its own (``gettimeout()``)
_LINUX = _ACCEPT_CLEARS_NONBLOCK = sys.platform.startswith("linux")
RECV_SIZE = 65_536
#: after a too-long line: how long to read and drop what the client still sends
DRAIN_SECONDS = 0.5
DRAIN_BYTES = 4 << 20


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


def close_quietly(conn: Socket) -> None:
    try:
        conn.close()
    except OSError:
        pass

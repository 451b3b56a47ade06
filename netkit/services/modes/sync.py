"""``--mode sync``: one client at a time, like ``socketserver.TCPServer``.

Clients that connect meanwhile are accepted, logged as waiting (up to
``--max-clients`` of them) and served in turn; TCPServer itself does not
accept them (they wait unseen in the kernel's listen backlog: ``--impl
socketserver`` shows it).  Everything runs on the
server's one loop; the client being served is one more file it watches,
with a timer for its idle timeout.
"""

from __future__ import annotations

import collections
import socket
import time
from typing import Any

from netkit import net
from netkit.events.upper_server import ClientWaiting
from netkit.protocols.upper import END_TOO_LONG, UpperSession
from netkit.services.blocking import set_io_timeouts
from netkit.services.loops import Timer
from netkit.services.modes.base import (
    RECV_SIZE,
    LineDeadline,
    Mode,
    close_quietly,
    drain,
    since,
)


class SyncMode(Mode):
    """Serve the waiting clients one after another on the server's loop.

    May be overridden: :meth:`accepted` (what happens to a new client while
    one is served) and :meth:`next_client` (which waiting client is next).
    """

    name = "sync"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.waiting: collections.deque[tuple[socket.socket, str]] = collections.deque()
        self.active: socket.socket | None = None
        self.session: UpperSession | None = None
        self.peer = ""
        self.started = 0.0
        self.last = 0.0
        self.timer: Timer | None = None
        self.line = LineDeadline(server.line_timeout)

    def accepted(self, conn: socket.socket, addr: Any) -> None:
        server = self.server
        peer = net.format_peer(addr)
        self.waiting.append((conn, peer))
        if self.session is not None or len(self.waiting) > 1:
            # the client served now, or the one first in line to be
            serving = self.peer if self.session is not None else self.waiting[0][1]
            if not server.quiet:
                server.emit(ClientWaiting(peer, len(self.waiting), serving))
        if len(self.waiting) >= server.max_clients:
            self.acceptor.pause()
        if self.active is None:
            self.next_client()

    def next_client(self) -> None:
        if not self.waiting or self.server.stop_requested:
            return
        server = self.server
        conn, peer = self.waiting.popleft()
        if len(self.waiting) < server.max_clients:
            self.acceptor.resume()
        self.active, self.peer = conn, peer
        self.session = server.new_session()
        self.line = LineDeadline(server.line_timeout)
        self.started = self.last = time.monotonic()
        conn.setblocking(True)
        set_io_timeouts(conn, server.idle_timeout)
        assert self.loop is not None
        self.loop.add(conn, self._readable)
        self.timer = self.loop.call_at(self.last + server.idle_timeout, self._check_idle)
        server.opened(peer)

    def serve_connection(self, conn: socket.socket, peer: str) -> None:  # pragma: no cover
        raise AssertionError("sync mode queues connections in accepted()")

    def _check_idle(self) -> None:
        assert self.loop is not None
        now = time.monotonic()
        line_due = self.line.due
        due = self.last + self.server.idle_timeout
        if line_due is not None and now >= line_due:
            self.timer = None
            self.finish("line timeout")
        elif now >= due:
            self.timer = None
            self.finish("idle timeout")
        else:
            self.timer = self.loop.call_at(min(due, line_due or due), self._check_idle)

    def _readable(self) -> None:
        conn, session = self.active, self.session
        assert conn is not None and session is not None
        self.last = time.monotonic()
        try:
            data = conn.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.finish("reset")
            return
        # b"" (EOF) goes to the session too: it answers an unterminated last line
        reply = session.receive(data)
        if session.heard:
            self.server.heard(self.peer, session.take_heard())
        self._line_begun(session)
        end = session.end
        if reply:
            try:
                conn.sendall(reply)
            except (BlockingIOError, TimeoutError):  # SO_SNDTIMEO: the client stopped reading
                end = "idle timeout"
            except OSError:
                end = "reset"
        if end == END_TOO_LONG:
            drain(conn)
        if end is not None:
            self.finish(end)

    def _line_begun(self, session: UpperSession) -> None:
        # a line begun must end by its deadline: the timer fires by then
        timer = self.timer
        due = self.line.sooner(session, self.last, timer.when if timer else None)
        if due is not None and timer is not None and self.loop is not None:
            timer.cancel()
            self.timer = self.loop.call_at(due, self._check_idle)

    def finish(self, reason: str) -> None:
        conn, session = self.active, self.session
        assert conn is not None and session is not None and self.loop is not None
        self.loop.remove(conn)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        close_quietly(conn)
        self.active, self.session = None, None
        self.server.closed(self.peer, session.lines, since(self.started), reason)
        self.next_client()

    def busy(self) -> int:
        return 0  # a stop closes the one served at once

    def stop(self) -> None:
        if self.active is not None:
            self.finish("server stopping")
        for conn, _peer in self.waiting:
            close_quietly(conn)
        if self.waiting:
            self.server.bump("closed_waiting", len(self.waiting))
        self.waiting.clear()

"""upper-server's async mode: an asyncio Protocol (uvloop when installed).

Protocol-level code: ``data_received`` frames, upper-cases and writes in
one call, with no coroutine per connection or per line.  The idle timeout
is one timer per connection that re-arms itself only when it fires.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from netkit import net
from netkit.services.upper import BUSY_REPLY, DRAIN_BYTES, DRAIN_SECONDS, LineSession

if TYPE_CHECKING:
    from netkit.services.upper import UpperServer


def make_protocol(
    server: UpperServer, loop: asyncio.AbstractEventLoop, conns: set[Any]
) -> type[asyncio.Protocol]:
    idle_timeout = server.idle_timeout
    max_line = server.max_line
    on_line = server._line_cb()
    max_clients = server.max_clients

    class UpperProtocol(asyncio.Protocol):
        __slots__ = (
            "closing",
            "drained",
            "last",
            "peer",
            "reason",
            "session",
            "timer",
            "transport",
        )

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports do not subclass asyncio.Transport: duck typing
            self.transport = cast(asyncio.Transport, transport)
            peer = net.format_peer(transport.get_extra_info("peername"))
            self.peer = peer
            self.reason = "eof"
            self.closing = False
            self.drained = 0
            self.session: LineSession | None = None
            self.timer: asyncio.TimerHandle | None = None
            if server._stopping:
                transport.close()
                return
            if len(conns) >= max_clients:
                self.transport.write(BUSY_REPLY)
                transport.close()
                server.bump("rejected")
                if not server.quiet:
                    from netkit.events.upper_server import Rejected

                    server.emit(Rejected(peer, f"max clients ({max_clients}) reached"))
                return
            conns.add(self)
            self.session = LineSession(peer, max_line, on_line)
            self.last = loop.time()
            self.timer = loop.call_at(self.last + idle_timeout, self._check_idle)
            server._opened(peer)

        def _check_idle(self) -> None:
            due = self.last + idle_timeout
            if loop.time() >= due:
                self.timer = None
                self._end("idle timeout")
            else:
                self.timer = loop.call_at(due, self._check_idle)

        def _end(self, reason: str, abort: bool = False) -> None:
            if self.closing:
                return
            self.closing = True
            self.reason = reason
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            session = self.session
            if session is None or self.closing:
                # closing: the rest is discarded, up to DRAIN_BYTES (as the
                # blocking modes do); past that the client is only flooding
                self.drained += len(data)
                if self.drained > DRAIN_BYTES:
                    self.transport.abort()
                return
            self.last = loop.time()
            reply, end = session.receive(data)
            if reply:
                self.transport.write(reply)
            if end == "line too long":
                # half-close so the client reads the error before the reset that
                # unread data would cause; drop what still comes, close soon
                self.closing = True
                self.reason = end
                if self.transport.can_write_eof():
                    self.transport.write_eof()
                loop.call_later(DRAIN_SECONDS, self.transport.close)
            elif end is not None:
                self._end(end)
            elif server._stopping and session.idle:
                self._end("server stopping")

        def eof_received(self) -> bool:
            if not self.closing:
                self.reason = "eof"
            self.closing = True
            return False  # close the transport

        def pause_writing(self) -> None:
            # the client does not read its replies: stop reading its lines
            self.transport.pause_reading()

        def resume_writing(self) -> None:
            if not self.closing:
                self.transport.resume_reading()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            session = self.session
            if session is None:
                return
            self.session = None
            if exc is not None and not self.closing:
                self.reason = "reset"
            conns.discard(self)
            server._closed(self.peer, session.lines, session.duration(), self.reason)
            if not conns and server._stopping:
                server._async_all_closed()

        def shutdown(self, graceful: bool) -> None:
            """Server stopping: close now if idle (or not *graceful*)."""
            if self.session is None:
                return
            if not graceful:
                self._end("server stopping", abort=True)
            elif self.session.idle:
                self._end("server stopping")

    return UpperProtocol

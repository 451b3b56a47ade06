"""``--mode async``: one event loop (uvloop when installed) with a Protocol class.

Protocol-level code: ``data_received`` hands the bytes to the session and
writes its reply in one call, with no coroutine per connection or per
line.  On uvloop the loop's own server and transports carry it; on the
standard loop a lean transport of ours
(:mod:`netkit.services.modes.lean_transport`), on the loop's readiness
callbacks, costs less per request than asyncio's.  The idle timeout is
one timer per connection that re-arms itself only when it fires.  The
server's waker is one more reader on the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from netkit import net
from netkit.events import Notice
from netkit.protocols.upper import BUSY_REPLY, END_TOO_LONG, UpperSession
from netkit.services.modes.base import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    TURN_AWAY_LIMIT,
    LineDeadline,
    Mode,
)
from netkit.services.modes.lean_transport import LeanServer

ASYNC_MAX_CLIENTS = 10_000
LOOPS = ("auto", "uvloop", "asyncio")


def loop_factory(name: str) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """What makes the event loop for ``--loop NAME``, and that loop's name."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise net.UsageError(
                    "--loop uvloop: uvloop is not installed (pip install 'netkit-cli[fast]')"
                ) from None
        else:
            return uvloop.new_event_loop, "uvloop"
    return asyncio.new_event_loop, "asyncio"


class AsyncMode(Mode):
    """Every connection on one event loop.

    May be overridden: :meth:`protocol_factory` (the asyncio Protocol for a
    connection) and :meth:`prepare` (which loop runs: ``loop_factory``).
    """

    name = "async"

    @staticmethod
    def default_max_clients() -> int:
        """10,000, or what the file-descriptor limit allows (less some for the server)."""
        try:
            import resource

            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
            return ASYNC_MAX_CLIENTS
        if soft == resource.RLIM_INFINITY:
            return ASYNC_MAX_CLIENTS
        return max(1, min(ASYNC_MAX_CLIENTS, soft - 64))

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.conns: set[Any] = set()
        self.aloop: asyncio.AbstractEventLoop | None = None
        self.loop_used = ""
        self._aserver: asyncio.AbstractServer | LeanServer | None = None
        self.all_closed = asyncio.Event()
        #: connections turned away and not yet closed
        self.turned_away = 0

    def prepare(self) -> None:
        # in the starting thread: a missing uvloop is the start's failure, and
        # the listening event names the loop; the loop itself is made and runs
        # in the server's thread (uvloop serves slower from a loop made elsewhere)
        self.loop_factory, self.loop_used = loop_factory(self.server.loop_name)

    def run(self) -> None:
        loop = self.aloop = self.loop_factory()
        try:
            loop.set_exception_handler(self._on_exception)
            factory = self.protocol_factory()
            if self.loop_used == "uvloop":  # its C transports are the fastest there is
                self._aserver = loop.run_until_complete(
                    loop.create_server(factory, sock=self.server.listener, backlog=1024)
                )
            else:  # the standard loop's transport costs more than the server's own work
                self._aserver = LeanServer(loop, self.server.listener, factory, self.server)
            loop.run_until_complete(self._serve())
        except Exception as exc:
            self.server.fail(f"event loop failed: {exc}")
        finally:
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        server = self.server
        stop = loop.create_future()
        waker = server.waker

        conns = self.conns

        def on_wake() -> None:
            waker.drain()
            if server.stop_requested and not stop.done():
                stop.set_result(None)
            if server.forced:  # a second Ctrl-C: close what is open now
                for p in list(conns):
                    p.shutdown(graceful=False)

        # one reader for the whole life (swapping readers on one fd is fragile)
        loop.add_reader(waker.fileno(), on_wake)
        try:
            if not server.stop_requested:
                await stop
            server.stopping = True
            assert self._aserver is not None
            self._aserver.close()
            for p in list(conns):
                p.shutdown(graceful=not server.forced)
            for graceful in (True, False):
                if not conns:
                    break
                try:
                    await asyncio.wait_for(
                        self.all_closed.wait(), server.grace if graceful else 1.0
                    )
                except TimeoutError:
                    if graceful:
                        for p in list(conns):
                            p.shutdown(graceful=False)
        finally:
            loop.remove_reader(waker.fileno())

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # (out of descriptors, uvloop, through libuv, accepts and closes the
        # extra connection and reports nothing: the default --max-clients
        # stays below the descriptor limit so clients get the busy reply
        # first; on the standard loop the Acceptor backs off and reports)
        exc = context.get("exception")
        message = context.get("message", "event loop error")
        self.server.emit(Notice("warning", f"{message}: {exc!r}" if exc else str(message)))

    def busy(self) -> int:
        return sum(not p.idle() for p in list(self.conns))

    def serve_connection(self, conn: Any, peer: str) -> None:  # pragma: no cover
        raise AssertionError("async mode's connections come from the event loop")

    def protocol_factory(self) -> type[asyncio.Protocol]:
        return _protocol_class(self)


def _protocol_class(mode: AsyncMode) -> type[asyncio.Protocol]:
    server = mode.server
    assert mode.aloop is not None
    loop: asyncio.AbstractEventLoop = mode.aloop
    conns = mode.conns
    idle_timeout = server.idle_timeout
    line_timeout = server.line_timeout
    max_clients = server.max_clients
    # the standard loop's time() is a Python method around time.monotonic():
    # the same clock without the extra frame, read once per chunk
    now = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time

    class UpperProtocol(asyncio.Protocol):
        __slots__ = (
            "closing",
            "drained",
            "last",
            "line",
            "peer",
            "reason",
            "session",
            "started",
            "timer",
            "transport",
            "watch",
        )

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports do not subclass asyncio.Transport: duck typing
            self.transport = cast(asyncio.Transport, transport)
            peer = net.format_peer(transport.get_extra_info("peername"))
            self.peer = peer
            self.reason = "eof"
            self.closing = False
            self.drained = 0
            #: a line deadline is pending or the server is stopping: every
            #: chunk needs more than its reply sent
            self.watch = False
            self.session: UpperSession | None = None
            self.timer: asyncio.TimerHandle | None = None
            if server.stopping:
                transport.close()
                return
            if len(conns) >= max_clients:
                self._turn_away()
                server.turned_away(peer)
                return
            conns.add(self)
            self.session = server.new_session()
            self.line = LineDeadline(line_timeout)
            self.started = self.last = loop.time()
            self.timer = loop.call_at(self.last + idle_timeout, self._check_idle)
            server.opened(peer)

        def _turn_away(self) -> None:
            # the busy reply and a FIN after it; what the client still sends is
            # read and dropped (data_received: at most DRAIN_BYTES) until it
            # closes or DRAIN_SECONDS pass, so no reset destroys the reply
            # (netkit.services.blocking.TurnAway, on the event loop)
            transport = self.transport
            transport.write(BUSY_REPLY)
            self.closing = True
            if mode.turned_away >= TURN_AWAY_LIMIT or not transport.can_write_eof():
                transport.close()
                return
            mode.turned_away += 1
            self.reason = "turned away"
            transport.write_eof()
            self.timer = loop.call_later(DRAIN_SECONDS, transport.close)

        def _check_idle(self) -> None:
            now = loop.time()
            line_due = self.line.due
            due = self.last + idle_timeout
            if line_due is not None and now >= line_due:
                self.timer = None
                self._end("line timeout")
            elif now >= due:
                self.timer = None
                self._end("idle timeout")
            else:
                self.timer = loop.call_at(min(due, line_due or due), self._check_idle)

        def _line_begun(self, session: UpperSession) -> None:
            # a line begun must end by its deadline: the timer fires by then
            timer = self.timer
            due = self.line.sooner(session, self.last, timer.when() if timer else None)
            if due is not None and timer is not None:
                timer.cancel()
                self.timer = loop.call_at(due, self._check_idle)

        def _end(self, reason: str, abort: bool = False) -> None:
            if self.closing:
                return
            self.closing = True
            self.reason = reason
            transport = self.transport
            if abort:
                transport.abort()
                return
            transport.close()  # what is buffered is sent first
            if transport.get_write_buffer_size():
                # to a client that may never read it (its replies filled the
                # buffers, so reading stopped): the idle timeout more, then
                # the connection goes, as a blocking mode's send times out
                loop.call_later(idle_timeout, transport.abort)

        def data_received(self, data: bytes) -> None:
            session = self.session
            if session is None or self.closing:
                # closing: the rest is discarded, up to DRAIN_BYTES (as the
                # blocking modes do); past that the client is only flooding
                self.drained += len(data)
                if self.drained > DRAIN_BYTES:
                    self.transport.abort()
                return
            self.last = now()
            reply = session.receive(data)
            if session.steady and not self.watch:  # the common case: one test each
                # (steady: every byte received is in a whole line, answered)
                self.transport.write(reply)
                return
            self._received(session, reply)

        def _received(self, session: UpperSession, reply: bytes) -> None:
            if session.heard:
                server.heard(self.peer, session.take_heard())
            if reply:
                self.transport.write(reply)
            if not session.idle or self.line.due is not None:
                self._line_begun(session)  # (a whole line with none pending: nothing to do)
            self.watch = self.line.due is not None or server.stopping
            end = session.end
            if end is None:  # the common case first: one test
                if server.stopping and session.idle:
                    self._end("server stopping")
            elif end == END_TOO_LONG:
                # half-close so the client reads the error before the reset that
                # unread data would cause; drop what still comes, close soon
                self.closing = True
                self.reason = end
                if self.transport.can_write_eof():
                    self.transport.write_eof()
                loop.call_later(DRAIN_SECONDS, self.transport.close)
            else:
                self._end(end)

        def eof_received(self) -> bool:
            session = self.session
            if not self.closing:
                self.reason = "eof"
                if session is not None:
                    # an unterminated last line is answered; close() sends it first
                    reply = session.receive(b"")
                    if session.heard:
                        server.heard(self.peer, session.take_heard())
                    if reply:
                        self.transport.write(reply)
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
                if self.reason == "turned away":
                    mode.turned_away -= 1
                return
            self.session = None
            if exc is not None and not self.closing:
                self.reason = "reset"
            conns.discard(self)
            duration = round(loop.time() - self.started, 6)
            server.closed(self.peer, session.lines, duration, self.reason)
            if not conns and server.stopping:
                mode.all_closed.set()

        def idle(self) -> bool:
            session = self.session
            return session is None or session.idle

        def shutdown(self, graceful: bool) -> None:
            """Server stopping: close now if idle (or not *graceful*)."""
            if self.session is None:
                return
            if not graceful:
                self._end("server stopping", abort=True)
            elif self.session.idle:
                self._end("server stopping")
            else:
                self.watch = True  # closed once its line is done

    return UpperProtocol

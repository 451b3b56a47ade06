"""A lean stream transport for the standard asyncio loop: ``--mode async --loop asyncio``.

The standard loop's own socket transport is written for every protocol
(buffered protocols, sendfile, TLS, flow control hooks): reading one
64-byte request and writing its reply goes through five Python frames and
a 256 KiB receive buffer.  This module serves the same asyncio
:class:`~asyncio.Protocol` with the least the upper-case server needs,
on the loop's own readiness callbacks (``add_reader``/``add_writer``):

- :class:`LeanTransport` is the :class:`asyncio.Transport` subset the
  protocol calls (write, write_eof, close, abort, pause and resume reading,
  ``get_extra_info("peername")``) with asyncio's semantics: writes are sent at once
  and buffered only when the socket is full, past 64 KiB of buffer the
  protocol's ``pause_writing`` is called (``resume_writing`` at 16 KiB),
  ``close`` sends what is buffered first, ``abort`` does not, EOF is
  ``eof_received``, a read or write error is ``connection_lost(exc)``, and
  an exception from the protocol goes to the loop's exception handler and
  closes the connection.
- :class:`LeanServer` accepts on the listening socket with the server's
  :class:`~netkit.services.loops.Acceptor` (batch accept, EMFILE back-off,
  reports at most once a second) and makes a transport per connection.

uvloop's transports are C and faster than this; they are used there.

May be overridden: :meth:`LeanServer.connection` (what is made for each
accepted socket).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netkit.services.blocking import RECV_SIZE
from netkit.services.loops import Acceptor

if TYPE_CHECKING:
    from netkit.services.core import Service

#: asyncio's default write-buffer limits: pause the protocol above, resume at or below
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
#: errors of a non-blocking call that only mean "not now"
AGAIN = (BlockingIOError, InterruptedError)


class LeanTransport:
    """One accepted connection, driven by the loop's readiness callbacks."""

    __slots__ = (
        "_buffer",
        "_closing",
        "_eof",
        "_fd",
        "_loop",
        "_lost",
        "_paused",
        "_protocol",
        "_reading",
        "_sock",
        "_writing_paused",
        "data_received",
        "peer",
        "send",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.Protocol
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self.peer: Any = None
        self.send = sock.send
        self.data_received = protocol.data_received
        self._buffer = bytearray()
        self._closing = False  # close() or abort() called
        self._eof = False  # write_eof() called
        self._lost = False  # connection_lost called (or due)
        self._paused = False  # pause_reading()
        self._reading = False  # our reader is on the loop
        self._writing_paused = False  # the protocol's pause_writing() was called

    def start(self) -> None:
        """Tell the protocol, then read (unless it closed us at once)."""
        self._protocol.connection_made(self)  # type: ignore[arg-type]
        if not self._closing and not self._paused:
            self._add_reader()

    # -- reading

    def _add_reader(self) -> None:
        self._loop.add_reader(self._fd, self._read_ready)
        self._reading = True

    def _remove_reader(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _read_ready(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except AGAIN:
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if data:
            try:
                self.data_received(data)
            except Exception as exc:  # a bug in the protocol: this connection ends
                self._fatal(exc, "data_received() failed")
            return
        # EOF: no more reading; the protocol says whether to stay open
        self._remove_reader()
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._fatal(exc, "eof_received() failed")
            return
        if not keep_open:
            self.close()

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._remove_reader()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if not self._closing:
                self._add_reader()

    def is_reading(self) -> bool:
        return self._reading

    # -- writing

    def write(self, data: bytes) -> None:
        if self._buffer or self._closing or self._eof:
            self._write_later(data)
            return
        try:
            n = self.send(data)
        except AGAIN:
            n = 0
        except OSError as exc:
            self._force_close(exc)
            return
        if n != len(data):
            self._buffer += memoryview(data)[n:]
            self._loop.add_writer(self._fd, self._write_ready)
            self._check_high_water()

    def _write_later(self, data: bytes) -> None:
        if self._closing or self._eof:
            return  # asyncio drops writes after close (and refuses them after EOF)
        self._buffer += data
        self._check_high_water()

    def _check_high_water(self) -> None:
        if not self._writing_paused and len(self._buffer) > HIGH_WATER:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        buffer = self._buffer
        try:
            n = self.send(buffer)
        except AGAIN:
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del buffer[:n]
        if self._writing_paused and len(buffer) <= LOW_WATER:
            self._writing_paused = False
            self._protocol.resume_writing()
        if buffer:
            return
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._lost_soon(None)
        elif self._eof:
            self._shutdown_write()

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._force_close(exc)

    # -- closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading, send what is buffered, then close."""
        if self._closing:
            return
        self._closing = True
        self._remove_reader()
        if not self._buffer:
            self._lost_soon(None)

    def abort(self) -> None:
        """Close now; what is buffered is dropped."""
        self._force_close(None)

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        self._closing = True
        self._remove_reader()
        self._lost_soon(exc)

    def _fatal(self, exc: Exception, message: str) -> None:
        """The protocol raised: tell the loop's exception handler, then close now."""
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )
        self._force_close(exc)

    def _lost_soon(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Only ``peername`` (the accepted address): all the protocol asks for."""
        return self.peer if name == "peername" else default


class LeanServer:
    """Accept on *listener* and serve each connection with a :class:`LeanTransport`.

    *server* is the netkit service whose stop request, counters and events
    the acceptor uses.  :meth:`close` stops accepting; the listening socket stays the
    server's to close.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        server: Service,
    ) -> None:
        self.loop = loop
        self.server = server
        self.protocol_factory = protocol_factory
        self.acceptor = Acceptor(_AcceptorLoop(loop, server), listener, self.connection)

    def connection(self, sock: socket.socket, peer: Any) -> None:
        """One accepted socket: non-blocking, no Nagle delay (as asyncio sets), served."""
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # reset before we got to it
            sock.close()
            return
        transport = LeanTransport(self.loop, sock, self.protocol_factory())
        transport.peer = peer
        transport.start()

    def close(self) -> None:
        self.acceptor.pause()


class _AcceptorLoop:
    """What :class:`~netkit.services.loops.Acceptor` asks of a loop, on an asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: Service) -> None:
        self.aloop = loop
        self.server = server

    def add(self, fileobj: Any, callback: Callable[[], None]) -> None:
        self.aloop.add_reader(fileobj, callback)

    def remove(self, fileobj: Any) -> None:
        self.aloop.remove_reader(fileobj)

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        # the standard loop's clock is time.monotonic(), the acceptor's
        return self.aloop.call_at(when, callback)

"""creosote listen --tcp: records over TCP (SocketHandler, syslog over TCP, JSON lines).

:class:`TcpRecords` runs on the listener's own :class:`netkit.services.loops.Loop`,
beside its UDP socket, so one thread handles every record: the core's
:class:`netkit.services.loops.Acceptor` accepts (at most
``max_clients`` at once; more are closed at once and counted), each
connection gets a :class:`netkit.protocols.dialects.StreamDecoder` (which
detects the framing from the first byte), and every record goes to the
listener, which logs, forwards, filters and shows it like a UDP one.  A
connection is closed when it is idle for ``idle_timeout`` seconds, when a
record is longer than ``max_record`` bytes, or when a frame is malformed
(counted, reported).  The listener writes each record as one line, so a
record is never torn across the log file.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netkit.events import Notice
from netkit.net import format_peer
from netkit.protocols.dialects import Accepted, Collected, RefusedFrom, StreamDecoder
from netkit.services.loops import Acceptor, Loop, Timer

if TYPE_CHECKING:
    from netkit.services.creosote import CreosoteListener

RECV_SIZE = 1 << 16
READS_PER_WAKE = 16  # a busy connection lets the others have their turn
UNFRAMED_PAUSE = 0.2  # seconds: then an unframed syslog record waiting is whole


@dataclass(frozen=True)
class TcpLimits:
    max_clients: int = 64
    max_record: int = 1 << 20
    idle_timeout: float = 300.0


class _Conn:
    __slots__ = ("decoder", "last_seen", "peer", "sock", "timer")

    def __init__(self, sock: socket.socket, peer: tuple[str, int], decoder: StreamDecoder) -> None:
        self.sock = sock
        self.peer = peer
        self.decoder = decoder
        self.last_seen = time.monotonic()
        self.timer: Timer | None = None


class TcpRecords:
    """Record connections on *sock*, served on *loop* for *listener*."""

    def __init__(
        self, listener: CreosoteListener, loop: Loop, sock: socket.socket, limits: TcpLimits
    ) -> None:
        self.listener = listener
        self.loop = loop
        self.limits = limits
        self._conns: dict[int, _Conn] = {}
        self._next_report = 0.0  # warnings at most once a second
        sock.listen(128)
        self.acceptor = Acceptor(loop, sock, self._connection)

    # -- connections -------------------------------------------------------------------
    def _connection(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        if len(self._conns) >= self.limits.max_clients:
            sock.close()
            self.listener.bump("tcp_rejected")
            if self._report_due():
                self._notice(
                    f"TCP connection from {format_peer(addr)} closed: --max-clients "
                    f"{self.limits.max_clients} connections are open"
                )
            return
        sock.setblocking(False)
        peer = (str(addr[0]), int(addr[1]))
        conn = _Conn(sock, peer, StreamDecoder(peer, max_record=self.limits.max_record))
        self._conns[sock.fileno()] = conn
        self.loop.add(sock, lambda: self._readable(conn))
        self._schedule(conn, conn.last_seen + self.limits.idle_timeout)
        self.listener.bump("tcp_connections")

    def _schedule(self, conn: _Conn, when: float) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
        conn.timer = self.loop.call_at(when, lambda: self._timer(conn))

    def _timer(self, conn: _Conn) -> None:
        if conn.sock.fileno() not in self._conns:
            return
        now = time.monotonic()
        if now - conn.last_seen >= self.limits.idle_timeout:
            self.listener.bump("idle_timeouts")
            self._end(conn, eof=True)
            return
        if conn.decoder.unframed and now - conn.last_seen >= UNFRAMED_PAUSE:
            self._hand_over(conn.decoder.flush())
        self._schedule(conn, self._deadline(conn))

    def _deadline(self, conn: _Conn) -> float:
        idle = conn.last_seen + self.limits.idle_timeout
        if conn.decoder.unframed:
            return min(idle, conn.last_seen + UNFRAMED_PAUSE)
        return idle

    def _readable(self, conn: _Conn) -> None:
        for _ in range(READS_PER_WAKE):
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # reset
                self._end(conn, eof=True)
                return
            if not data:
                self._end(conn, eof=True)
                return
            conn.last_seen = time.monotonic()
            self._hand_over(conn.decoder.feed(data))
            if conn.decoder.failed is not None:
                self.listener.bump("tcp_bad_frames")
                self._end(conn, eof=False)
                return
            if self.listener.stop_requested:
                break
        if conn.decoder.unframed:
            self._schedule(conn, self._deadline(conn))

    def _hand_over(self, items: list[Collected]) -> None:
        for item in items:
            if isinstance(item, Accepted):
                self.listener.accept(item)
            elif isinstance(item, RefusedFrom):
                self.listener.refuse(item)

    def _end(self, conn: _Conn, *, eof: bool) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
        if eof:  # an unterminated last line is a record; a cut frame is refused
            self._hand_over(conn.decoder.eof())
        try:
            self.loop.remove(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def close_all(self) -> None:
        """The listener is stopping: hand over what each connection holds whole, close them."""
        for conn in list(self._conns.values()):
            self._end(conn, eof=True)

    # -- reports ---------------------------------------------------------------------
    def _report_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_report:
            return False
        self._next_report = now + 1.0
        return True

    def _notice(self, message: str) -> None:
        self.listener.emit(Notice(level="warning", message=message))


__all__ = ["TcpLimits", "TcpRecords"]

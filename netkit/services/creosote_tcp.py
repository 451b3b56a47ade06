"""creosote listen --tcp: records over TCP (SocketHandler, syslog over TCP, JSON lines).

A small class of its own with its own selector thread, until it moves onto
the server core's accept loop: it accepts connections (at most
*max_clients* at once; more are closed at once and counted), gives each a
:class:`netkit.protocols.dialects.StreamDecoder` (which detects the framing
from the first byte) and hands every record to the listener, which logs,
forwards, filters and shows it exactly like a UDP one.  A connection is
closed when it is idle for *idle_timeout* seconds, when a record is longer
than *max_record* bytes, or when a frame is malformed (counted, reported).
Records are handed over whole, and the listener writes each as one line
under its log lock, so a record is never torn across the log file.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netkit.events import Notice
from netkit.net import bind_socket, bound_address, describe_error, format_peer
from netkit.protocols.dialects import (
    MAX_RECORD,
    Accepted,
    Collected,
    RefusedFrom,
    StreamDecoder,
)

if TYPE_CHECKING:
    from netkit.services.creosote import CreosoteListener

DEFAULT_MAX_CLIENTS = 64
DEFAULT_IDLE_TIMEOUT = 300.0
ACCEPT_BATCH = 64
UNFRAMED_PAUSE = 0.2  # seconds: then an unframed syslog record waiting is whole
RECV_SIZE = 1 << 16


@dataclass
class _Conn:
    sock: socket.socket
    peer: tuple[str, int]
    decoder: StreamDecoder
    last_seen: float
    records: int = 0
    closed: bool = field(default=False)


class TcpRecordServer:
    """Accept record connections on *port* and feed *listener*; start/stop from its thread."""

    def __init__(
        self,
        listener: CreosoteListener,
        *,
        host: str,
        port: int,
        version: int | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        max_record: int = MAX_RECORD,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.listener = listener
        self.max_clients = max_clients
        self.max_record = max_record
        self.idle_timeout = idle_timeout
        self.sock = bind_socket(host, port, socktype=socket.SOCK_STREAM, version=version)
        self.sock.setblocking(False)
        self._conns: dict[int, _Conn] = {}
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping = threading.Event()
        self._next_report = 0.0  # warnings at most once a second
        self._thread = threading.Thread(target=self._run, name="netkit-creosote-tcp", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return bound_address(self.sock)

    def start(self) -> None:
        self._sel.register(self.sock, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread.start()

    # -- the loop --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._sel.select(self._next_timeout()):
                    if key.fileobj is self.sock:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        conn = key.data
                        assert isinstance(conn, _Conn)
                        self._readable(conn)
                self._expire_idle(time.monotonic())
        except Exception as exc:  # never die silently: the command exits 1 with it
            self.listener.fail(describe_error(exc, "TCP listener failed"))
        finally:
            for conn in list(self._conns.values()):
                self._end(conn, "server stopping", eof=True)

    def _next_timeout(self) -> float | None:
        if not self._conns:
            return None
        deadlines = [c.last_seen + self.idle_timeout for c in self._conns.values()]
        deadlines += [
            c.last_seen + UNFRAMED_PAUSE for c in self._conns.values() if c.decoder.unframed
        ]
        return max(0.0, min(deadlines) - time.monotonic())

    def _drain_wake(self) -> None:
        for _ in range(16):
            try:
                if not self._wake_r.recv(64):
                    return
            except (BlockingIOError, InterruptedError):
                return

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: say so (at most once a second)
                self.listener.bump("accept_errors")
                if self._report_due():
                    self._notice("warning", describe_error(exc, "TCP accept"))
                return
            if len(self._conns) >= self.max_clients:
                sock.close()
                self.listener.bump("tcp_rejected")
                if self._report_due():
                    self._notice(
                        "warning",
                        f"TCP connection from {format_peer(addr)} closed: --max-clients "
                        f"{self.max_clients} connections are open",
                    )
                continue
            sock.setblocking(False)
            peer = (str(addr[0]), int(addr[1]))
            conn = _Conn(
                sock, peer, StreamDecoder(peer, max_record=self.max_record), time.monotonic()
            )
            self._conns[sock.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)
            self.listener.bump("tcp_connections")

    def _readable(self, conn: _Conn) -> None:
        for _ in range(16):  # bounded: other connections get their turn
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._end(conn, "reset", eof=True)
                return
            if not data:
                self._end(conn, "eof", eof=True)
                return
            conn.last_seen = time.monotonic()
            self._hand_over(conn, conn.decoder.feed(data))
            if conn.decoder.failed is not None:
                self._end(conn, conn.decoder.failed, eof=False)
                self.listener.bump("tcp_bad_frames")
                return
            if self.listener.stop_requested:
                return

    def _hand_over(self, conn: _Conn, items: list[Collected]) -> None:
        for item in items:
            if isinstance(item, Accepted):
                conn.records += 1
                self.listener.accept(item)
            elif isinstance(item, RefusedFrom):
                self.listener.refuse(item)

    def _expire_idle(self, now: float) -> None:
        for conn in list(self._conns.values()):
            if conn.decoder.unframed and now - conn.last_seen >= UNFRAMED_PAUSE:
                self._hand_over(conn, conn.decoder.flush())
        for conn in [c for c in self._conns.values() if now - c.last_seen >= self.idle_timeout]:
            self.listener.bump("idle_timeouts")
            self._end(conn, "idle timeout", eof=True)

    def _end(self, conn: _Conn, reason: str, *, eof: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        if eof:  # an unterminated last line is a record; a cut frame is refused
            self._hand_over(conn, conn.decoder.eof())
        self._conns.pop(conn.sock.fileno(), None)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _report_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_report:
            return False
        self._next_report = now + 1.0
        return True

    def _notice(self, level: str, message: str) -> None:
        self.listener.emit(Notice(level=level, message=message))

    def stop(self, timeout: float) -> bool:
        """Stop accepting, end every connection (handing over what is whole); True if done."""
        self._stopping.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._sel.close()
        for s in (self.sock, self._wake_r, self._wake_w):
            s.close()
        return True

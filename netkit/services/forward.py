"""Forwarding records to a syslog pipeline (rsyslog, syslog-ng, Vector, Fluent Bit).

``--forward syslog+udp://HOST:PORT`` or ``syslog+tcp://HOST:PORT`` (RFC
5424, RFC 6587 octet counting; ``?framing=lf`` for newline-framed TCP).
Each record is formatted by :func:`netkit.protocols.records.format_5424`
and put in a bounded queue; one thread sends them in arrival order.  A TCP
connection that fails is reopened with exponential back-off while records
wait in the queue; what the queue cannot hold is dropped, counted, and
reported at most once a second and in the summary.

Over TCP a record counts as sent (``forwarded``) once the receiver's TCP
has acknowledged its last byte: Linux tells how many bytes of the send
queue are unacknowledged (``SIOCOUTQ``).  Until then it stays in flight;
when the connection dies, what was not acknowledged goes back to the
front of the queue and out again on the next connection, so nothing
written into a dying connection is lost uncounted.  Measured with
rsyslogd stopped by SIGTERM in the middle of a stream: when it closes
with everything read (FIN), every record arrives exactly once.  When it
closes with records still unread in its socket, its kernel resets the
connection (RST): those records were acknowledged and are lost, and no
sender of plain TCP syslog can tell how many (that needs application
acknowledgements, RELP).  A reset is therefore reported as such and
counted (:attr:`Forwarder.resets`, ``forward_resets`` in the summary).
A slow or stopped receiver is waited for, never dropped and reconnected
(that would send what it already holds twice).
"""

from __future__ import annotations

import collections
import errno
import fcntl
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from netkit.net import NetError, connect_socket, describe_error, format_host
from netkit.protocols.records import Record, format_5424, octet_frame

DEFAULT_QUEUE = 10_000
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
CONNECT_TIMEOUT = 2.0
REPORT_EVERY = 1.0  # seconds between drop reports
ACK_POLL = 0.02  # seconds between looks at what a TCP receiver acknowledged
BATCH_BYTES = 1 << 16  # written to a TCP connection at once


class _Closed(BrokenPipeError):
    """The receiver closed the connection (FIN): it read everything it acknowledged."""


@dataclass(frozen=True)
class ForwardTarget:
    transport: str  # "udp" or "tcp"
    host: str
    port: int
    framing: str  # "octet" or "lf" (TCP), "datagram" (UDP)
    queue: int

    def __str__(self) -> str:
        tail = "?framing=lf" if self.framing == "lf" else ""
        return f"syslog+{self.transport}://{format_host(self.host)}:{self.port}{tail}"


def parse_target(url: str) -> ForwardTarget:
    """``syslog+udp://HOST:PORT`` / ``syslog+tcp://HOST:PORT[?framing=lf|octet][&queue=N]``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if parts.scheme not in ("syslog+udp", "syslog+tcp"):
        raise ValueError(f"{url!r}: use syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT")
    if not parts.hostname or port is None or port == 0:
        raise ValueError(f"{url!r}: give a host and a port, e.g. syslog+tcp://127.0.0.1:514")
    if parts.path not in ("", "/") or parts.fragment or parts.username:
        raise ValueError(f"{url!r}: only HOST:PORT and ?framing= / ?queue= are understood")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"framing", "queue"}
    if unknown:
        raise ValueError(f"{url!r}: unknown parameter {sorted(unknown)[0]!r}")
    transport = parts.scheme.removeprefix("syslog+")
    framing = query.get("framing", ["octet" if transport == "tcp" else "datagram"])[-1]
    if transport == "tcp" and framing not in ("octet", "lf"):
        raise ValueError(f"{url!r}: framing is octet (RFC 6587 octet counting) or lf")
    if transport == "udp" and "framing" in query:
        raise ValueError(f"{url!r}: framing applies to syslog+tcp only")
    size = query.get("queue", [str(DEFAULT_QUEUE)])[-1]
    if not (size.isascii() and size.isdigit() and 1 <= int(size) <= 1_000_000):
        raise ValueError(f"{url!r}: queue is a number of records from 1 to 1000000")
    return ForwardTarget(transport, parts.hostname, port, framing, int(size))


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Forwarder:
    """Send records to one syslog target from a thread of its own; never blocks the caller."""

    def __init__(
        self,
        target: ForwardTarget,
        *,
        notify: Callable[[str, str], None] = lambda level, message: None,
    ) -> None:
        self.target = target
        self.notify = notify  # (level, message): the listener turns it into a Notice
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.resets = 0  # connections the receiver reset (acknowledged records may be lost)
        self.resent = 0  # frames written again after their connection died unacknowledged
        self._queue: collections.deque[bytes] = collections.deque()
        # written to the current TCP connection and not acknowledged yet: (end offset, frame)
        self._inflight: collections.deque[tuple[int, bytes]] = collections.deque()
        self._written_end = 0  # end offset of the last frame in flight
        self._written = 0  # bytes the kernel took on the current connection
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = 0.0
        self._unreported = 0
        self._next_report = 0.0
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="netkit-forward", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- producer side ---------------------------------------------------------
    def submit(self, record: Record, peer: str) -> None:
        """Queue *record* (from *peer*); drop and count it when the queue is full."""
        frame = format_5424(
            record, timestamp=_timestamp(), source=peer, lf_safe=self.target.framing == "lf"
        )
        if self.target.framing == "octet":
            frame = octet_frame(frame)
        elif self.target.framing == "lf":
            frame += b"\n"
        with self._cond:
            if self._closing:
                self._drop_locked(1)
                return
            if len(self._queue) >= self.target.queue:
                self._drop_locked(1)
                return
            self._queue.append(frame)
            self._cond.notify()

    def _drop_locked(self, n: int) -> None:
        self.dropped += n
        self._unreported += n
        now = time.monotonic()
        if now >= self._next_report:
            self._next_report = now + REPORT_EVERY
            count, self._unreported = self._unreported, 0
            self.notify(
                "warning",
                f"forward to {self.target}: {count} records dropped (queue of "
                f"{self.target.queue} full); {self.dropped} in all",
            )

    # -- sender thread -----------------------------------------------------------
    def _connect(self) -> socket.socket:
        socktype = socket.SOCK_STREAM if self.target.transport == "tcp" else socket.SOCK_DGRAM
        sock = connect_socket(
            self.target.host, self.target.port, socktype=socktype, timeout=CONNECT_TIMEOUT
        )
        if self.target.transport == "tcp":
            sock.setblocking(False)  # writes wait in _write, watching acks and the deadline
        else:
            sock.settimeout(CONNECT_TIMEOUT)
        self._written = 0
        return sock

    def _next_batch(self) -> list[bytes] | None:
        """Frames to write next (under the lock); ``None`` when the thread should end.

        Waits while nothing is queued, or while as many frames as the queue
        holds are written but not acknowledged yet (those are polled for).
        """
        while True:
            if self._closing and (
                time.monotonic() > self._deadline or not (self._queue or self._inflight)
            ):
                return None
            room = self.target.queue - len(self._inflight)
            if self._queue and room > 0:
                batch: list[bytes] = []
                size = 0
                while self._queue and len(batch) < room and size < BATCH_BYTES:
                    frame = self._queue.popleft()
                    batch.append(frame)
                    size += len(frame)
                return batch
            if self._inflight:
                return []  # nothing to write: see what was acknowledged
            self._cond.wait()

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        down_since: float | None = None
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
            try:
                if self._sock is None:
                    self._sock = self._connect()
                    if down_since is not None:
                        self.notify(
                            "info",
                            f"forward to {self.target}: connected again after "
                            f"{time.monotonic() - down_since:.1f} s",
                        )
                        down_since = None
                if self.target.transport == "udp":
                    self._send_datagrams(self._sock, batch)
                else:
                    self._write(self._sock, batch)  # moves the batch in flight
                    if not self._settle(self._sock):
                        with self._cond:  # nothing new to write: poll acknowledgements
                            if not self._queue:
                                self._cond.wait(ACK_POLL)
            except (OSError, NetError) as exc:
                if self.target.transport == "udp":
                    with self._cond:  # a datagram is sent or lost: never sent again
                        if isinstance(exc, ConnectionRefusedError) and batch:
                            batch.pop(0)  # nobody listens: that datagram is lost, say so
                            self._drop_locked(1)
                        self._queue.extendleft(reversed(batch))
                else:
                    self._requeue_unacknowledged(batch)
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if self.target.transport == "udp" and isinstance(exc, ConnectionRefusedError):
                    continue
                reset = isinstance(exc, ConnectionResetError)
                self.resets += reset
                if down_since is None or reset:
                    if down_since is None:
                        down_since = time.monotonic()
                        self.reconnects += 1
                    self.notify(
                        "warning",
                        f"{self._reset_warning() if reset else self._why(exc)}; retrying, "
                        f"records wait in a queue of {self.target.queue}",
                    )
                with self._cond:
                    if self._closing and time.monotonic() > self._deadline:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST

    def _send_datagrams(self, sock: socket.socket, batch: list[bytes]) -> None:
        while batch:
            sock.send(batch[0])
            with self._cond:
                batch.pop(0)
                self.sent += 1

    def _write(self, sock: socket.socket, batch: list[bytes]) -> None:
        """Write *batch* to the connection; each frame waits in flight for its ack."""
        with self._cond:
            end = self._written_end
            for frame in batch:
                end += len(frame)
                self._inflight.append((end, frame))
            self._written_end = end
        data = memoryview(b"".join(batch))
        batch.clear()
        while data:
            try:
                n = sock.send(data)
            except BlockingIOError:
                # the receiver is slow or stopped: not a reason to drop its connection
                # (records it took would be sent twice); wait, and see what it acknowledges
                self._settle(sock)
                with self._cond:
                    if self._closing and time.monotonic() > self._deadline:
                        return  # what is not acknowledged is counted by close()
                select.select([], [sock], [], ACK_POLL)
                continue
            self._written += n
            data = data[n:]

    def _acknowledged(self, sock: socket.socket) -> int:
        """Bytes of this connection the peer's TCP has acknowledged (SIOCOUTQ, Linux)."""
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except (OSError, AttributeError):  # no SIOCOUTQ here: written counts as delivered
            return self._written
        unacknowledged: int = struct.unpack("i", raw)[0]
        return max(0, self._written - unacknowledged)

    def _settle(self, sock: socket.socket) -> bool:
        """Count the frames acknowledged so far as sent; ``True`` if none is left in flight.

        Raises when the peer has closed (FIN: ``_Closed``) or reset the
        connection: what it did not acknowledge goes out again on the next
        connection.
        """
        acked = self._acknowledged(sock)
        with self._cond:
            while self._inflight and self._inflight[0][0] <= acked:
                self._inflight.popleft()
                self.sent += 1
            left = bool(self._inflight)
            if not left and not self._queue:
                self._cond.notify_all()  # wait_idle()
        try:
            if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                raise _Closed(errno.EPIPE, "the receiver closed the connection")
        except BlockingIOError:
            pass  # open, nothing to read: the usual case
        return not left

    def _requeue_unacknowledged(self, batch: list[bytes]) -> None:
        """The connection died: frames it acknowledged are sent, the rest go back in front
        (with *batch*, the frames taken for a connection that could not be opened)."""
        acked = self._written
        if self._sock is not None:
            acked = self._acknowledged(self._sock)
        with self._cond:
            while self._inflight and self._inflight[0][0] <= acked:
                self._inflight.popleft()
                self.sent += 1
            again = [frame for _end, frame in self._inflight]
            self.resent += len(again)
            self._inflight.clear()
            self._written_end = 0
            self._queue.extendleft(reversed(again + batch))

    def _reset_warning(self) -> str:
        return (
            f"forward to {self.target}: the receiver reset the connection (it stopped with "
            "records unread): records its TCP had acknowledged but it had not read are lost "
            "and plain TCP syslog cannot tell how many; what it had not acknowledged is sent "
            "again"
        )

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, _Closed):
            return f"forward to {self.target}: {exc.strerror}"
        if isinstance(exc, NetError):
            return f"forward to {self.target}: {exc}"
        return describe_error(exc, f"forward to {self.target}")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every record submitted so far is sent and acknowledged (or dropped)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._inflight, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for at most *timeout* seconds; count the rest as dropped."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + CONNECT_TIMEOUT + 1.0)
        with self._cond:
            left = len(self._queue) + len(self._inflight)
            self._queue.clear()
            self._inflight.clear()
            if left:
                self.dropped += left
                self.notify(
                    "warning",
                    f"forward to {self.target}: {left} records not sent (or not "
                    "acknowledged) before stopping",
                )
        if self._sock is not None:
            self._sock.close()
            self._sock = None

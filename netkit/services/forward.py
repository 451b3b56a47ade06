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

``--forward relp://HOST:PORT`` (or ``syslog+relp://``) speaks RELP
(:mod:`netkit.protocols.relp`; rsyslog's ``imrelp``): each record is a
``syslog`` command and counts as sent only when the receiver's ``rsp 200``
for it arrives; up to 128 records are in flight (the window) at once.  When
the connection is lost, every record not acknowledged yet goes back to the
front of the queue and is sent first on the next connection; back-off, the
bounded queue and drop counting are the TCP ones.  Nothing is lost
uncounted, not even when rsyslogd is killed with records unread (a reset).
Delivery is at-least-once: a record the receiver wrote but whose
acknowledgement was lost with the connection is sent again, so it may
arrive twice (:attr:`Forwarder.resent` counts what was sent again).  A
record the receiver refuses (an error status) is counted as dropped, and so
is one still unacknowledged when the forwarder stops (after ``close()``'s
grace), although the receiver may yet write it.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import ipaddress
import os
import re
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
from netkit.protocols import relp
from netkit.protocols.records import Record, format_5424, octet_frame

DEFAULT_QUEUE = 10_000
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
CONNECT_TIMEOUT = 2.0
REPORT_EVERY = 1.0  # seconds between drop reports
ACK_POLL = 0.02  # seconds between looks at what a TCP receiver acknowledged
BATCH_BYTES = 1 << 16  # written to a TCP connection at once
RELP_WINDOW = relp.WINDOW  # RELP records in flight (unacknowledged) at most
RELP_CLOSE_WAIT = 1.0  # seconds to wait for the answer to RELP close when stopping
SELECT_MAX = 0.5  # seconds a RELP sender sleeps at most before it looks at the clock
SCHEMES = {"syslog+udp": "udp", "syslog+tcp": "tcp", "relp": "relp", "syslog+relp": "relp"}


class _Closed(BrokenPipeError):
    """The receiver closed the connection (FIN): it read everything it acknowledged."""


@dataclass(frozen=True)
class ForwardTarget:
    transport: str  # "udp", "tcp" or "relp"
    host: str
    port: int
    framing: str  # "octet" or "lf" (TCP), "datagram" (UDP), "relp" (RELP frames)
    queue: int

    def __str__(self) -> str:
        where = f"{format_host(self.host)}:{self.port}"
        if self.transport == "relp":
            return f"relp://{where}"
        tail = "?framing=lf" if self.framing == "lf" else ""
        return f"syslog+{self.transport}://{where}{tail}"


def parse_target(url: str) -> ForwardTarget:
    """``syslog+udp://HOST:PORT`` / ``syslog+tcp://HOST:PORT[?framing=lf|octet][&queue=N]``
    / ``relp://HOST:PORT[?queue=N]`` (also spelt ``syslog+relp://``)."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        # (urlsplit would quietly drop a tab or newline)
        raise ValueError(f"{url!r}: a URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"{url!r}: use syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT or relp://HOST:PORT"
        )
    if not parts.hostname or port is None or port == 0:
        raise ValueError(f"{url!r}: give a host and a port, e.g. syslog+tcp://127.0.0.1:514")
    host = _checked_host(url, parts.hostname, parts.netloc)
    if parts.path not in ("", "/") or parts.fragment or parts.username:
        raise ValueError(f"{url!r}: only HOST:PORT and ?framing= / ?queue= are understood")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"framing", "queue"}
    if unknown:
        raise ValueError(f"{url!r}: unknown parameter {sorted(unknown)[0]!r}")
    transport = SCHEMES[parts.scheme]
    default = {"tcp": "octet", "udp": "datagram", "relp": "relp"}[transport]
    framing = query.get("framing", [default])[-1]
    if transport == "tcp" and framing not in ("octet", "lf"):
        raise ValueError(f"{url!r}: framing is octet (RFC 6587 octet counting) or lf")
    if transport != "tcp" and "framing" in query:
        raise ValueError(f"{url!r}: framing applies to syslog+tcp only")
    size = query.get("queue", [str(DEFAULT_QUEUE)])[-1]
    if not (size.isascii() and size.isdigit() and 1 <= int(size) <= 1_000_000):
        raise ValueError(f"{url!r}: queue is a number of records from 1 to 1000000")
    return ForwardTarget(transport, host, port, framing, int(size))


_NAME_RE = re.compile(r"[^\W_][\w.-]*", re.ASCII | re.IGNORECASE)


def _checked_host(url: str, hostname: str, netloc: str) -> str:
    """The host of a forward URL, checked before anything starts: ``[V6]`` a valid
    IPv6 address (a zone as ``%25NAME``), else an IPv4 address or a DNS name;
    nothing else in the authority (no second bracket, space or control byte)."""
    bracketed = netloc.startswith("[")
    if bracketed:
        address = hostname.replace("%25", "%", 1)
        try:
            ipaddress.IPv6Address(address.partition("%")[0])
        except ValueError:
            raise ValueError(f"{url!r}: [{hostname}] is not an IPv6 address") from None
        expected = f"[{hostname}]"
    else:
        address = hostname
        if _NAME_RE.fullmatch(hostname) is None or len(hostname) > 253:
            raise ValueError(
                f"{url!r}: {hostname!r} is not a host name or address "
                "(letters, digits, '.', '-', '_'; an IPv6 address in brackets)"
            )
        expected = hostname
    if netloc.rpartition(":")[0].lower() != expected.lower():
        raise ValueError(f"{url!r}: the authority must be HOST:PORT or [IPV6]:PORT")
    return address


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
        self.resets = 0  # TCP connections the receiver reset (acknowledged records may be lost)
        self.resent = 0  # frames written again after their connection died unacknowledged
        self.refused = 0  # RELP records the receiver answered with an error (counted as dropped)
        self._queue: collections.deque[bytes] = collections.deque()
        # written to the current connection and not acknowledged yet: (end offset, frame)
        # over TCP, (transaction number, message) over RELP
        self._inflight: collections.deque[tuple[int, bytes]] = collections.deque()
        self._written_end = 0  # end offset of the last frame in flight
        self._written = 0  # bytes the kernel took on the current connection
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = 0.0
        self._unreported = 0
        self._next_report = 0.0
        self._next_refusal_report = 0.0
        self._sock: socket.socket | None = None
        # RELP: the sender sleeps in select(); a byte on this pipe wakes it (submit, close)
        self._waiting = False
        self._wake: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="netkit-forward", daemon=True)

    def start(self) -> None:
        if self.target.transport == "relp":
            self._wake = os.pipe()
            for fd in self._wake:
                os.set_blocking(fd, False)
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
            self._wake_locked()

    def _wake_locked(self) -> None:
        """Wake a RELP sender sleeping in select() (one byte, only when it sleeps)."""
        if self._waiting and self._wake is not None:
            self._waiting = False
            try:
                os.write(self._wake[1], b"\0")
            except OSError:
                pass  # the pipe is full (it is awake anyway) or closed (it has ended)

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
        stream = self.target.transport in ("tcp", "relp")
        socktype = socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
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
        if self.target.transport == "relp":
            self._run_relp()
            return
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
                next_backoff = self._back_off(backoff)
                if next_backoff is None:
                    return
                backoff = next_backoff
                continue
            backoff = BACKOFF_FIRST

    def _back_off(self, backoff: float) -> float | None:
        """Wait *backoff* seconds before the next connection (a close wakes the
        wait); the back-off after that, or None when stopping and out of time."""
        with self._cond:
            if self._closing and time.monotonic() > self._deadline:
                return None
            self._cond.wait(backoff)
        return min(backoff * 2, BACKOFF_MAX)

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

    # -- RELP ------------------------------------------------------------------------
    def _run_relp(self) -> None:
        """Connect, open a RELP session, stream; on any failure resend what was not acked."""
        backoff = BACKOFF_FIRST
        down_since: float | None = None
        while True:
            with self._cond:
                while not (self._queue or self._inflight or self._closing):
                    self._cond.wait()  # connect once there is something to send
                if self._closing and (
                    time.monotonic() > self._deadline or not (self._queue or self._inflight)
                ):
                    return
            try:
                self._sock = self._connect()
                session = self._relp_open(self._sock)
                if down_since is not None:
                    self.notify(
                        "info",
                        f"forward to {self.target}: connected again after "
                        f"{time.monotonic() - down_since:.1f} s",
                    )
                    down_since = None
                backoff = BACKOFF_FIRST
                self._relp_stream(self._sock, session)
                return  # stopping: everything acknowledged, or out of time
            except (OSError, NetError, relp.RelpError) as exc:
                again = self._relp_requeue()
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if down_since is None:
                    down_since = time.monotonic()
                    self.reconnects += 1
                    resend = f"; {again} unacknowledged records are sent again" if again else ""
                    self.notify(
                        "warning",
                        f"{self._why(exc)}{resend}; retrying, records wait in a queue of "
                        f"{self.target.queue}",
                    )
                next_backoff = self._back_off(backoff)
                if next_backoff is None:
                    return
                backoff = next_backoff

    def _relp_open(self, sock: socket.socket) -> relp.RelpSession:
        """Send ``open`` and wait (bounded) for the server to accept the session."""
        session = relp.RelpSession(RELP_WINDOW)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        sock.settimeout(CONNECT_TIMEOUT)
        sock.sendall(session.open())
        while session.state != "open":
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                data = sock.recv(1 << 16)
            except TimeoutError:
                raise TimeoutError(
                    errno.ETIMEDOUT, "no answer to RELP open (is it a RELP server?)"
                ) from None
            if not data:
                raise _Closed(errno.EPIPE, "the receiver closed the connection at RELP open")
            if any(isinstance(e, relp.ServerClosed) for e in session.receive(data)):
                raise _Closed(errno.EPIPE, "the receiver closed the session at RELP open")
        sock.setblocking(False)
        return session

    def _relp_stream(self, sock: socket.socket, session: relp.RelpSession) -> None:
        """Keep the window full and count acknowledgements until stopping."""
        assert self._wake is not None
        wake = self._wake[0]
        out = bytearray()
        while True:
            done = False
            with self._cond:
                while self._queue and session.can_send:
                    message = self._queue.popleft()
                    txnr, frame = session.syslog(message)
                    self._inflight.append((txnr, message))
                    out += frame
                if self._closing:
                    if not self._queue and not self._inflight:
                        done = True
                    elif time.monotonic() > self._deadline:
                        return  # close() counts what is left
                self._waiting = not out and not done
                wait = SELECT_MAX
                if self._closing:
                    wait = max(0.0, min(wait, self._deadline - time.monotonic()))
            if done:
                self._relp_goodbye(sock, session)
                return
            fd = sock.fileno()
            readable, writable, _ = select.select([fd, wake], [fd] if out else [], [], wait)
            with self._cond:
                self._waiting = False
            if wake in readable:
                try:
                    os.read(wake, 4096)
                except BlockingIOError:
                    pass
            if writable:
                try:
                    del out[: sock.send(out)]
                except BlockingIOError:
                    pass
            if fd in readable:
                data = sock.recv(1 << 16)
                if not data:
                    raise _Closed(errno.EPIPE, "the receiver closed the connection")
                self._relp_events(session.receive(data))

    def _relp_events(self, events: list[relp.SessionEvent]) -> None:
        closed = False
        with self._cond:
            for event in events:
                if isinstance(event, relp.Acked | relp.Refused):
                    txnr, _message = self._inflight.popleft()
                    assert txnr == event.txnr  # the session checks the order
                    if isinstance(event, relp.Acked):
                        self.sent += 1
                    else:
                        self._refuse_locked(event)
                elif isinstance(event, relp.ServerClosed):
                    closed = True
            if not self._queue and not self._inflight:
                self._cond.notify_all()  # wait_idle()
        if closed:
            raise _Closed(errno.EPIPE, "the receiver closed the session (RELP serverclose)")

    def _refuse_locked(self, event: relp.Refused) -> None:
        self.refused += 1
        self.dropped += 1
        now = time.monotonic()
        if now >= self._next_refusal_report:
            self._next_refusal_report = now + REPORT_EVERY
            self.notify(
                "warning",
                f"forward to {self.target}: the receiver refused a record ({event.code} "
                f"{event.text}); {self.refused} refused in all",
            )

    def _relp_requeue(self) -> int:
        """The connection is gone: what it did not acknowledge goes back in front."""
        with self._cond:
            again = [message for _txnr, message in self._inflight]
            self._inflight.clear()
            self.resent += len(again)
            self._queue.extendleft(reversed(again))
            return len(again)

    def _relp_goodbye(self, sock: socket.socket, session: relp.RelpSession) -> None:
        """Everything is acknowledged: send ``close`` and wait briefly for its answer."""
        try:
            sock.settimeout(RELP_CLOSE_WAIT)
            sock.sendall(session.close())
            deadline = time.monotonic() + RELP_CLOSE_WAIT
            while session.state != "closed" and time.monotonic() < deadline:
                data = sock.recv(1 << 16)
                if not data:
                    break
                session.receive(data)
        except (OSError, relp.RelpError):
            pass  # nothing is in flight: a failed goodbye loses nothing
        sock.close()
        self._sock = None

    def _reset_warning(self) -> str:
        return (
            f"forward to {self.target}: the receiver reset the connection (it stopped with "
            "records unread): records its TCP had acknowledged but it had not read are lost "
            "and plain TCP syslog cannot tell how many; what it had not acknowledged is sent "
            f"again (relp://{format_host(self.target.host)}:PORT, to rsyslog's imrelp, "
            "acknowledges every record and loses none)"
        )

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, _Closed) or (isinstance(exc, TimeoutError) and exc.strerror):
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
            self._waiting = True  # wake a RELP sender even if it is about to sleep
            self._wake_locked()
        if self._thread.is_alive():
            self._thread.join(timeout + 2 * CONNECT_TIMEOUT + RELP_CLOSE_WAIT + 1.0)
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
        if self._wake is not None and not self._thread.is_alive():
            for fd in self._wake:
                os.close(fd)
            self._wake = None

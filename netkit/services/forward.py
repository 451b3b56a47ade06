"""Forwarding records to a syslog pipeline (rsyslog, syslog-ng, Vector, Fluent Bit).

``--forward syslog+udp://HOST:PORT`` or ``syslog+tcp://HOST:PORT`` (RFC
5424, RFC 6587 octet counting; ``?framing=lf`` for newline-framed TCP).
Each record is formatted by :func:`netkit.protocols.records.format_5424`
and put in a bounded queue; one thread sends them in arrival order.  A TCP
connection that fails is reopened with exponential back-off while records
wait in the queue; what the queue cannot hold is dropped, counted, and
reported at most once a second and in the summary.
"""

from __future__ import annotations

import collections
import socket
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
        self._queue: collections.deque[bytes] = collections.deque()
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
        sock.settimeout(CONNECT_TIMEOUT)
        return sock

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        down_since: float | None = None
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or (self._closing and time.monotonic() > self._deadline):
                    return
                frame = self._queue[0]
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
                self._sock.sendall(frame)
            except (OSError, NetError) as exc:
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if self.target.transport == "udp" and isinstance(exc, ConnectionRefusedError):
                    with self._cond:  # nobody listens: that datagram is lost, say so
                        self._queue.popleft()
                        self._drop_locked(1)
                    continue
                if down_since is None:
                    down_since = time.monotonic()
                    self.reconnects += 1
                    self.notify(
                        "warning",
                        f"{self._why(exc)}; retrying, "
                        f"records wait in a queue of {self.target.queue}",
                    )
                with self._cond:
                    if self._closing and time.monotonic() > self._deadline:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            with self._cond:
                self._queue.popleft()
                self.sent += 1

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, NetError):
            return f"forward to {self.target}: {exc}"
        return describe_error(exc, f"forward to {self.target}")

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for at most *timeout* seconds; count the rest as dropped."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + CONNECT_TIMEOUT + 1.0)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            if left:
                self.dropped += left
                self.notify(
                    "warning",
                    f"forward to {self.target}: {left} records not sent before stopping",
                )
        if self._sock is not None:
            self._sock.close()
            self._sock = None

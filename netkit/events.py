"""Events that flow from services to renderers.

Services never print: they call the sink they were given with one of these
frozen dataclasses.  :meth:`Event.as_dict` gives the stable JSON form: the
``event`` name first, then the fields; a ``bytes`` field becomes ``text``
(plus ``data_b64`` when the bytes are not valid UTF-8).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from netkit.protocols.text import payload_fields


@dataclass(frozen=True)
class Event:
    event: ClassVar[str] = "event"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                out.update(payload_fields(value))
            else:
                out[f.name] = value
        return out


Sink = Callable[[Event], None]
E = TypeVar("E", bound=Event)


class Recorder:
    """A sink that keeps the events it is given; :meth:`wait_for` waits with a timeout.

    Used where code drives a service in-process (``netkit demo``, tests).
    """

    def __init__(self, forward: Sink | None = None) -> None:
        self.events: list[Event] = []
        self.forward = forward
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        if self.forward is not None:
            self.forward(event)

    def of(self, kind: type[E]) -> list[E]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(
        self,
        kind: type[E],
        n: int = 1,
        timeout: float = 5.0,
        where: Callable[[E], bool] = lambda e: True,
    ) -> list[E]:
        """Wait until *n* events of *kind* (matching *where*) arrived; TimeoutError if not."""

        def found() -> list[E]:
            return [e for e in self.events if isinstance(e, kind) and where(e)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(found()) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} {kind.__name__} event(s) within {timeout} s, got {found()!r}"
                )
            return found()


@dataclass(frozen=True)
class Listening(Event):
    """A server is bound and ready: the first event every server emits."""

    event: ClassVar[str] = "listening"
    host: str
    port: int
    transport: str  # "tcp" or "udp"


@dataclass(frozen=True)
class Notice(Event):
    """A status or diagnostic line for humans (stderr); ``level`` is info/warning/error."""

    event: ClassVar[str] = "notice"
    level: str
    message: str


@dataclass(frozen=True)
class Summary(Event):
    """What a server did, emitted once when it stops."""

    event: ClassVar[str] = "summary"
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = "stopped"


@dataclass(frozen=True)
class AddressPacked(Event):
    """pack-ip: an IP address in text, packed, and integer forms."""

    event: ClassVar[str] = "address"
    input: str
    address: str
    family: int
    packed: str
    integer: int
    host_order_integer: int | None
    host_byteorder: str
    read_as: str  # how the input was read, e.g. "dotted quad", "inet_aton: a.b (8.24 bits)"


@dataclass(frozen=True)
class PortPacked(Event):
    """pack-ip --short: a 16-bit port in host and network byte order."""

    event: ClassVar[str] = "port"
    port: int
    packed: str
    host_order_integer: int
    host_byteorder: str


@dataclass(frozen=True)
class Resolved(Event):
    """resolve: what a name or address lookup found."""

    event: ClassVar[str] = "resolved"
    query: str
    kind: str  # "forward" or "reverse"
    canonical: str
    aliases: list[str]
    addresses: list[str]
    ipv4: list[str]
    ipv6: list[str]
    fqdn: str
    source: str  # "system resolver" or "dns 127.0.0.1:53"
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CompletionScript(Event):
    """completion SHELL --json: the script as a string."""

    event: ClassVar[str] = "completion"
    shell: str
    script: str


@dataclass(frozen=True)
class CompletionInstalled(Event):
    """completion install --json: where the script was written."""

    event: ClassVar[str] = "installed"
    shell: str
    path: str


# --------------------------------------------------------------------------
# stream services: tcp-time and upper-server


@dataclass(frozen=True)
class TimeSent(Event):
    """tcp-time serve: one connection (or datagram) answered."""

    event: ClassVar[str] = "sent"
    peer: str
    transport: str  # "tcp" or "udp"
    protocol: str  # "daytime" or "time"
    unix: int
    value: str  # the daytime line without CRLF, or the RFC 868 number in decimal


@dataclass(frozen=True)
class TimeReceived(Event):
    """tcp-time get: what the server said the time is."""

    event: ClassVar[str] = "time"
    protocol: str
    unix: int | None  # None when a daytime text is in no form netkit can read
    text: str  # daytime text as received (decoded, CRLF removed), or the UTC time read
    offset_seconds: float | None  # server minus local clock
    server: str
    transport: str
    zone: str  # how the text was read: "UTC", "no zone given: read as local time", ...
    rfc868: int | None = None


@dataclass(frozen=True)
class Connected(Event):
    """A client connected (upper-server)."""

    event: ClassVar[str] = "connect"
    peer: str
    open: int  # connections open now, this one included
    total: int  # connections accepted so far


@dataclass(frozen=True)
class ClientWaiting(Event):
    """sync mode: a client was accepted but waits until the one being served leaves."""

    event: ClassVar[str] = "waiting"
    peer: str
    queued: int  # clients waiting now, this one included
    serving: str  # the peer being served


@dataclass(frozen=True)
class LineEvent(Event):
    """One line received (upper-server); ``text``/``data_b64`` hold it without its ending."""

    event: ClassVar[str] = "line"
    peer: str
    data: bytes
    length: int


@dataclass(frozen=True)
class Disconnected(Event):
    """A client's session ended (upper-server)."""

    event: ClassVar[str] = "disconnect"
    peer: str
    lines: int
    duration: float  # seconds
    reason: str  # "empty line", "eof", "reset", "idle timeout", "line too long", "server stopping"
    open: int  # connections still open
    total: int


@dataclass(frozen=True)
class Rejected(Event):
    """A connection refused by a limit (``--max-clients``)."""

    event: ClassVar[str] = "rejected"
    peer: str
    reason: str


@dataclass(frozen=True)
class UpperDatagram(Event):
    """upper-server --udp: one datagram upper-cased and sent back."""

    event: ClassVar[str] = "datagram"
    peer: str
    size: int
    data: bytes


@dataclass(frozen=True)
class LineReply(Event):
    """upper-server send / chat: the server's reply to one line."""

    event: ClassVar[str] = "reply"
    sent: str
    data: bytes
    server: str


# --------------------------------------------------------------------------
# datagram services: udp-echo and creosote


@dataclass(frozen=True)
class Datagram(Event):
    """udp-echo serve: one datagram received (``replied`` false when it was dropped)."""

    event: ClassVar[str] = "datagram"
    peer: str
    size: int
    data: bytes
    replied: bool = True
    dropped: str | None = None  # why no reply: "low_port", "self", "rate"
    # dropped datagrams since the previous drop event that got no event of their own
    # (drops are logged at most once a second; the summary counts every one)
    unlogged_drops: int = 0


@dataclass(frozen=True)
class Reply(Event):
    """udp-echo send: the server's reply to one message."""

    event: ClassVar[str] = "reply"
    peer: str
    size: int
    data: bytes
    rtt_ms: float
    tries: int = 1


@dataclass(frozen=True)
class Message(Event):
    """creosote listen: one whole message (a plain datagram, or all chunks of one).

    ``syslog`` holds facility, severity, host, app, ... when the datagram is
    syslog (RFC 3164 or RFC 5424), else ``None``.
    """

    event: ClassVar[str] = "message"
    time: str  # ISO 8601, local time with offset
    peer: str
    data: bytes
    bytes: int
    chunks: int = 1
    syslog: dict[str, Any] | None = None


@dataclass(frozen=True)
class IncompleteMessage(Event):
    """creosote listen: a chunked message whose chunks did not all arrive."""

    event: ClassVar[str] = "incomplete"
    time: str
    peer: str
    id: str
    data: bytes  # the chunks that did arrive, in order
    bytes: int
    received: int
    total: int
    missing: list[int]
    reason: str  # "timeout", "stopped" or "evicted"


@dataclass(frozen=True)
class Spewed(Event):
    """creosote spew: what was sent."""

    event: ClassVar[str] = "sent"
    peer: str
    bytes: int
    chunks: int
    datagram_bytes: int  # on the wire, headers included


# --------------------------------------------------------------------------
# netkit demo: the lecture's exercises answered by running the services


@dataclass(frozen=True)
class DemoSection(Event):
    """demo: an exercise begins, with the lecture's question it answers."""

    event: ClassVar[str] = "exercise"
    exercise: str
    title: str
    question: str


@dataclass(frozen=True)
class DemoStep(Event):
    """demo: one exchange as it happened (who did what, and the figures)."""

    event: ClassVar[str] = "step"
    exercise: str
    actor: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoClaim(Event):
    """demo: an answer to the lecture's question, checked against what was measured."""

    event: ClassVar[str] = "claim"
    exercise: str
    claim: str
    holds: bool
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoTable(Event):
    """demo: a small measured comparison."""

    event: ClassVar[str] = "table"
    exercise: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str

"""Events that flow from services to renderers.

Services never print: they call the sink they were given with one of these
frozen dataclasses.  :meth:`Event.as_dict` gives the stable JSON form: the
``event`` name first, then the fields; a ``bytes`` field becomes ``text``
(plus ``data_b64`` when the bytes are not valid UTF-8); then the common names
of :meth:`Event.common_fields`.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

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
        for name, value in self.common_fields().items():
            out.setdefault(name, value)
        return out

    def common_fields(self) -> dict[str, Any]:
        """Fields added under the name every command uses for the concept
        (``peer`` for the other end, ``size`` for a payload's bytes, ...),
        beside an event's own documented names, which stay."""
        return {}


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
    #: upper-server: the concurrency mode and, in async mode, the event loop
    #: that runs ("uvloop" or "asyncio"); left out of the JSON when None
    mode: str | None = None
    loop: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        for key in ("mode", "loop"):
            if out[key] is None:
                del out[key]
        return out


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
    # an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291) names this IPv4 address
    mapped_ipv4: str | None = None


@dataclass(frozen=True)
class PortPacked(Event):
    """pack-ip --short: a 16-bit port in host and network byte order."""

    event: ClassVar[str] = "port"
    port: int
    packed: str
    host_order_integer: int
    host_byteorder: str
    input: str = ""  # the value as given (several values: which result is whose)


@dataclass(frozen=True)
class InvalidValue(Event):
    """pack-ip --json with several values: one that could not be read (exit 2)."""

    event: ClassVar[str] = "invalid"
    input: str
    error: str


@dataclass(frozen=True)
class NetworkInfo(Event):
    """pack-ip ADDRESS/PREFIX: a network, its mask, broadcast and host range."""

    event: ClassVar[str] = "network"
    input: str
    network: str  # canonical ADDRESS/PREFIX
    family: int
    prefix_length: int
    netmask: str
    hostmask: str
    broadcast: str | None  # IPv4 only (IPv6 has none)
    first_host: str
    last_host: str
    addresses: int
    hosts: int
    host_bits_set: bool  # the input named an address inside the network


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
    # with --server: what each query type got (answer, nodata, nxdomain,
    # refused, servfail, ..., timeout, unreachable)
    status: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unresolved(Event):
    """resolve --json: a query that found nothing (also an ``Error:`` line, exit 1)."""

    event: ClassVar[str] = "unresolved"
    query: str
    source: str  # "system resolver" or "dns 127.0.0.1:53"
    error: str
    status: dict[str, str] = field(default_factory=dict)  # with --server, per type


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


# The services' events live in netkit._events_*; they are defined on first use
# (PEP 562), so a command that needs none of them (pack-ip, resolve, --help)
# does not pay for building some thirty dataclasses at start-up.
if TYPE_CHECKING:
    pass

_LAZY: dict[str, str] = {
    "TimeSent": "netkit._events_stream",
    "TimeReceived": "netkit._events_stream",
    "Connected": "netkit._events_stream",
    "ClientWaiting": "netkit._events_stream",
    "LineEvent": "netkit._events_stream",
    "Disconnected": "netkit._events_stream",
    "Rejected": "netkit._events_stream",
    "UpperDatagram": "netkit._events_stream",
    "LineReply": "netkit._events_stream",
    "Datagram": "netkit._events_dgram",
    "Reply": "netkit._events_dgram",
    "Message": "netkit._events_dgram",
    "IncompleteMessage": "netkit._events_dgram",
    "Spewed": "netkit._events_dgram",
    "AnatomyExchange": "netkit._events_anatomy",
    "AnatomyFrame": "netkit._events_anatomy",
    "AnatomyNeighbours": "netkit._events_anatomy",
    "AnatomySocket": "netkit._events_anatomy",
    "AnatomySummary": "netkit._events_anatomy",
    "DemoSection": "netkit._events_demo",
    "DemoStep": "netkit._events_demo",
    "DemoClaim": "netkit._events_demo",
    "DemoTable": "netkit._events_demo",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

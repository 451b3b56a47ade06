"""The base of every event, the sink type, and the events every server emits.

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
    #: fields left out of the JSON when they are None
    optional: ClassVar[tuple[str, ...]] = ()
    #: fields never in the JSON: wire bytes for the human ``--hex`` view only
    #: (the JSON already carries the payload as ``text`` / ``data_b64``)
    hidden: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        for f in dataclasses.fields(self):
            if f.name in self.hidden:
                continue
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                out.update(payload_fields(value))
            elif value is not None or f.name not in self.optional:
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
    optional = ("mode", "loop", "logfile", "dual_stack", "impl")
    host: str
    port: int
    transport: str  # "tcp" or "udp"
    #: upper-server: the concurrency mode and, in async mode, the event loop
    #: that runs ("uvloop" or "asyncio"); left out of the JSON when None
    mode: str | None = None
    loop: str | None = None
    #: creosote listen --logfile: the file every accepted record goes to
    logfile: str | None = None
    #: bound to the IPv6 wildcard '::': true when IPv4 clients reach it too
    #: (the default), false with -6 (IPv6 only); left out for other addresses
    dual_stack: bool | None = None
    #: upper-server over TCP: whose server code runs, "netkit" or "socketserver"
    #: (the standard library's classes, ``--impl socketserver``)
    impl: str | None = None


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
    optional = ("uptime",)
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = "stopped"
    #: seconds from start to stop; left out of the JSON when None
    uptime: float | None = None

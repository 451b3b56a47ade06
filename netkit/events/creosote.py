"""Events of creosote listen.

What spew emits (:class:`DatagramSent`, :class:`Spewed`) is its own family,
:mod:`netkit.events.creosote_spew`, so a sender loads none of the listener's
events or renderers; re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event
from netkit.events.creosote_spew import DatagramSent, Spewed

__all__ = ["DatagramSent", "IncompleteMessage", "Message", "RecordRefused", "Spewed"]


@dataclass(frozen=True)
class Message(Event):
    """creosote listen: one whole message (a plain datagram, or all chunks of one).

    ``syslog`` holds facility, severity, host, app, ... when the datagram is
    syslog (RFC 3164 or RFC 5424), else ``None``.  ``dialect`` names what
    the sender spoke (text, spew, netkit, json, rfc3164, rfc5424, pickle,
    gelf); ``level`` and ``logger`` are ``None`` when it carries none;
    ``fields`` holds its extra plain values (exception text, extra=...).
    ``highlight`` (not in JSON): ``--grep`` matches, as spans of ``data``
    decoded with surrogateescape.
    """

    event: ClassVar[str] = "message"
    time: str  # ISO 8601, local time with offset
    peer: str
    data: bytes
    bytes: int
    chunks: int = 1
    syslog: dict[str, Any] | None = None
    dialect: str = "text"
    level: str | None = None
    logger: str | None = None
    fields: dict[str, Any] | None = None
    levelno: int | None = None
    highlight: tuple[tuple[int, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        del out["highlight"]
        return out

    def common_fields(self) -> dict[str, Any]:
        return {"size": self.bytes}


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
    missing: list[int]  # the first 100 missing chunk numbers
    reason: str  # "timeout", "stopped" or "evicted"
    missing_count: int = 0  # every missing chunk
    missing_ranges: list[tuple[int, int]] | None = None  # [first, last], at most 32
    dialect: str = "netkit"  # or "gelf"

    def common_fields(self) -> dict[str, Any]:
        return {"size": self.bytes}


@dataclass(frozen=True)
class RecordRefused(Event):
    """creosote listen: a datagram or frame that claimed a dialect and was refused.

    At most one a second is reported; ``more`` counts those not reported
    since the previous one (the summary counts every one as ``refused``).
    """

    event: ClassVar[str] = "refused"
    time: str
    peer: str
    dialect: str
    reason: str
    more: int = 0

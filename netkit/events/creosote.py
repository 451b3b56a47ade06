"""Events of creosote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event


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

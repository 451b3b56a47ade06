"""Events of tcp-time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netkit.events.base import Event


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
    # the offset counts whole seconds: the true offset is within offset +- this
    offset_bound_seconds: int | None = None

"""Events of SNTP (tcp-time --protocol sntp) and tcp-time encode (re-exported by netkit.events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class SntpTime(Event):
    """tcp-time get --protocol sntp: the sample kept (the lowest delay of --samples)."""

    event: ClassVar[str] = "time"
    protocol: str  # "sntp"
    unix: float  # the server's time at our receipt (local clock + offset)
    text: str  # that time in UTC, microseconds
    offset_seconds: float  # server minus local clock
    delay_seconds: float  # round trip minus the server's hold time
    # the offset's +- bound: (delay + root delay) / 2 + root dispersion + precision + drift
    root_distance: float
    stratum: int
    refid: str
    leap: int  # 0 no warning, 1/2 leap second at the end of the day, 3 unsynchronised
    version: int
    root_delay: float
    root_dispersion: float
    server: str
    transport: str = "udp"
    samples: int = 1  # valid samples taken; the one shown has the lowest delay


@dataclass(frozen=True)
class SntpServed(Event):
    """tcp-time serve --protocol sntp: one request answered (a reply or a kiss-o'-death)."""

    event: ClassVar[str] = "served"
    peer: str
    kind: str  # "reply" or "kod"
    stratum: int
    leap: int
    refid: str
    # the reply's four timestamps as Unix time (None where the field is 0)
    reference: float | None
    # the client's transmit timestamp echoed, as 16 hex digits: careful clients send
    # a random nonce there, not their clock, so it is not read as a time
    originate: str
    receive: float
    transmit: float
    size: int  # bytes of the request; the reply is 48


@dataclass(frozen=True)
class SntpDropped(Event):
    """tcp-time serve --protocol sntp: a datagram not answered, and why."""

    event: ClassVar[str] = "dropped"
    peer: str
    size: int
    reason: str  # "loop", "short", "mode", "version", "rate"
    detail: str
    unlogged_drops: int = 0  # drops since the last event that got none (logged once a second)


@dataclass(frozen=True)
class TimeEncoded(Event):
    """tcp-time encode: one instant in every encoding (see netkit.protocols.timecodes)."""

    event: ClassVar[str] = "encoded"
    unix: float
    iso: str
    rfc867: str | None
    rfc868: dict[str, Any]
    ntp: dict[str, Any]
    time_t32: dict[str, Any]

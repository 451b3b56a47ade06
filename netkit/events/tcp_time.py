"""Events of tcp-time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class TimeSent(Event):
    """tcp-time serve: one connection (or datagram) answered."""

    event: ClassVar[str] = "sent"
    hidden = ("wire",)
    peer: str
    transport: str  # "tcp" or "udp"
    protocol: str  # "daytime" or "time"
    unix: int
    value: str  # the daytime line without CRLF, or the RFC 868 number in decimal
    #: the bytes on the wire, for --hex only (never in the JSON)
    wire: bytes | None = None

    def common_fields(self) -> dict[str, Any]:
        # the "sent" schema every command shares: peer, transport, size (the
        # bytes on the wire, from what the protocol sends for this value)
        if self.protocol == "time":
            return {"size": 4}
        if self.protocol == "daytime":
            return {"size": len(self.value.encode("utf-8")) + 2}  # the line and CRLF
        return {}


@dataclass(frozen=True)
class TimeReceived(Event):
    """tcp-time get: what the server said the time is."""

    event: ClassVar[str] = "time"
    hidden = ("wire", "request_wire")
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
    #: the reply on the wire, for --hex only (never in the JSON)
    wire: bytes | None = None
    request_wire: bytes | None = None  # what was sent (UDP: the empty datagram)

    def common_fields(self) -> dict[str, Any]:
        return {"peer": self.server}

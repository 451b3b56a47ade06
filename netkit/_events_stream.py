"""Events of tcp-time and upper-server (see :mod:`netkit.events`, which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events import Event


@dataclass(frozen=True)
class TimeSent(Event):
    """tcp-time serve: one connection (or datagram) answered."""

    event: ClassVar[str] = "sent"
    peer: str
    transport: str  # "tcp" or "udp"
    protocol: str  # "daytime" or "time"
    unix: int
    value: str  # the daytime line without CRLF, or the RFC 868 number in decimal

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
    protocol: str
    unix: int | None  # None when a daytime text is in no form netkit can read
    text: str  # daytime text as received (decoded, CRLF removed), or the UTC time read
    offset_seconds: float | None  # server minus local clock
    server: str
    transport: str
    zone: str  # how the text was read: "UTC", "no zone given: read as local time", ...
    rfc868: int | None = None

    def common_fields(self) -> dict[str, Any]:
        return {"peer": self.server}


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

    def common_fields(self) -> dict[str, Any]:
        return {"size": self.length}


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

    def common_fields(self) -> dict[str, Any]:
        return {"peer": self.server, "size": len(self.data)}

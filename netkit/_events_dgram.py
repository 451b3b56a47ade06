"""Events of udp-echo and creosote (see :mod:`netkit.events`, which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events import Event


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
    missing: list[int]
    reason: str  # "timeout", "stopped" or "evicted"

    def common_fields(self) -> dict[str, Any]:
        return {"size": self.bytes}


@dataclass(frozen=True)
class Spewed(Event):
    """creosote spew: what was sent."""

    event: ClassVar[str] = "sent"
    peer: str
    bytes: int
    chunks: int
    datagram_bytes: int  # on the wire, headers included

    def common_fields(self) -> dict[str, Any]:
        # the "sent" schema every command shares: peer, transport, size
        return {"transport": "udp", "size": self.bytes}

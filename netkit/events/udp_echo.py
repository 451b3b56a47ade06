"""Events of udp-echo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class Datagram(Event):
    """udp-echo serve: one datagram received (``replied`` false when it was dropped)."""

    event: ClassVar[str] = "datagram"
    hidden = ("reply_wire",)
    peer: str
    size: int
    data: bytes
    replied: bool = True
    dropped: str | None = None  # why no reply: "low_port", "self", "rate"
    # dropped datagrams since the previous drop event that got no event of their own
    # (drops are logged at most once a second; the summary counts every one)
    unlogged_drops: int = 0
    #: the reply on the wire, for --hex only (never in the JSON)
    reply_wire: bytes | None = None


@dataclass(frozen=True)
class Reply(Event):
    """udp-echo send: the server's reply to one message."""

    event: ClassVar[str] = "reply"
    hidden = ("sent_wire",)
    peer: str
    size: int
    data: bytes
    rtt_ms: float
    tries: int = 1
    #: the message sent on the wire, for --hex only (never in the JSON)
    sent_wire: bytes | None = None

"""Events of netkit anatomy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class AnatomyExchange(Event):
    """anatomy: an exchange begins: what runs where, and what the capture sees."""

    event: ClassVar[str] = "exchange"
    exchange: str
    interface: str
    servers: dict[str, str]
    netns: bool
    capture: bool
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnatomyFrame(Event):
    """anatomy: one captured frame, layer by layer, fields named as tshark names them.

    ``dissected`` (the parsed layers with their byte offsets) and ``raw``
    are for the renderer; the JSON form carries ``layers`` and ``hex``.
    """

    event: ClassVar[str] = "frame"
    index: int
    direction: str  # "out" (sent by the client side) or "in"
    time: float  # seconds since the first frame shown
    length: int
    layers: list[dict[str, Any]]
    hex: str
    dissected: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "index": self.index,
            "direction": self.direction,
            "time": self.time,
            "length": self.length,
            "layers": self.layers,
            "hex": self.hex,
        }


@dataclass(frozen=True)
class AnatomyNeighbours(Event):
    """anatomy --netns: a namespace's neighbour (ARP) cache, before or after the exchange."""

    event: ClassVar[str] = "neighbours"
    when: str  # "before" or "after"
    side: str  # "client" or "server"
    address: str
    mac: str
    entries: list[dict[str, str]]


@dataclass(frozen=True)
class AnatomySocket(Event):
    """anatomy --no-capture: what a socket itself can tell (addresses, TCP_INFO)."""

    event: ClassVar[str] = "socket"
    role: str
    transport: str
    local: str
    peer: str
    tcp_info: dict[str, Any] | None
    missing: str


@dataclass(frozen=True)
class AnatomySummary(Event):
    """anatomy: the lecture's steps mapped to frames, and what the capture dropped."""

    event: ClassVar[str] = "summary"
    exchange: str
    frames: int
    duplicates_dropped: int
    steps: list[dict[str, Any]]
    ports: dict[str, int]
    pcap: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

"""Events of creosote spew (re-exported by :mod:`netkit.events.creosote`).

A family of their own, the listener's apart: the human lines for them are
:mod:`netkit.render.creosote_spew`, and a sender loads neither the listener's
events nor its renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class DatagramSent(Event):
    """creosote spew --hex: one datagram as it went out, its chunk header
    included (human output only: emitted just for the hex view)."""

    event: ClassVar[str] = "datagram"
    peer: str
    size: int
    data: bytes


@dataclass(frozen=True)
class Spewed(Event):
    """creosote spew: what was sent."""

    event: ClassVar[str] = "sent"
    peer: str
    bytes: int
    chunks: int
    datagram_bytes: int  # on the wire, headers included
    messages: int = 1  # --lines: one per line
    refused: int = 0  # --lines: messages the host answered "nothing listens" to

    def common_fields(self) -> dict[str, Any]:
        # the "sent" schema every command shares: peer, transport, size
        return {"transport": "udp", "size": self.bytes}

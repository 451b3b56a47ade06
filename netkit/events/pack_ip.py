"""Events of pack-ip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class AddressPacked(Event):
    """pack-ip: an IP address in text, packed, and integer forms."""

    event: ClassVar[str] = "address"
    input: str
    address: str
    family: int
    packed: str
    integer: int
    host_order_integer: int | None
    host_byteorder: str
    read_as: str  # how the input was read, e.g. "dotted quad", "inet_aton: a.b (8.24 bits)"


@dataclass(frozen=True)
class PortPacked(Event):
    """pack-ip --short: a 16-bit port in host and network byte order."""

    event: ClassVar[str] = "port"
    port: int
    packed: str
    host_order_integer: int
    host_byteorder: str

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
    # an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291) names this IPv4 address
    mapped_ipv4: str | None = None


@dataclass(frozen=True)
class PortPacked(Event):
    """pack-ip --short: a 16-bit port in host and network byte order."""

    event: ClassVar[str] = "port"
    port: int
    packed: str
    host_order_integer: int
    host_byteorder: str
    input: str = ""  # the value as given (several values: which result is whose)


@dataclass(frozen=True)
class InvalidValue(Event):
    """pack-ip --json with several values: one that could not be read (exit 2)."""

    event: ClassVar[str] = "invalid"
    input: str
    error: str


@dataclass(frozen=True)
class NetworkInfo(Event):
    """pack-ip ADDRESS/PREFIX: a network, its mask, broadcast and host range."""

    event: ClassVar[str] = "network"
    input: str
    network: str  # canonical ADDRESS/PREFIX
    family: int
    prefix_length: int
    netmask: str
    hostmask: str
    broadcast: str | None  # IPv4 only (IPv6 has none)
    first_host: str
    last_host: str
    addresses: int
    hosts: int
    host_bits_set: bool  # the input named an address inside the network

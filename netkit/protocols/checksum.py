"""The Internet checksum (RFC 1071) and what a captured checksum field means.

The sum is the ones' complement sum of the 16-bit big-endian words, folded
and inverted.  IPv4 sums its header only; TCP and UDP add a pseudo-header
(source, destination, protocol, length) before their header and data.

On loopback and on a veth the kernel leaves the TCP/UDP checksum to "the
NIC" (checksum offload) and there is none: the field holds only the folded
pseudo-header sum that hardware would start from.  :func:`verdict` tells a
correct checksum from such a partial one and from a wrong one.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

OFFLOAD_NOTE = "computed by the NIC (checksum offload): not filled in on loopback"


def ones_sum(data: bytes, start: int = 0) -> int:
    """The folded 16-bit ones' complement sum of *data* (padded with a zero byte)."""
    if len(data) % 2:
        data += b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = start + sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the value to put in the field (the field itself counted as zero)."""
    return ~ones_sum(data) & 0xFFFF


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    """RFC 793 / RFC 8200 pseudo-header for a TCP or UDP checksum."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        return a.packed + b.packed + struct.pack("!BBH", 0, proto, length)
    return a.packed + b.packed + struct.pack("!IxxxB", length, proto)


def transport_checksum(src: str, dst: str, proto: int, segment: bytes, offset: int) -> int:
    """The checksum a TCP/UDP *segment* should carry (its field at *offset* taken as zero)."""
    zeroed = segment[:offset] + b"\x00\x00" + segment[offset + 2 :]
    value = internet_checksum(pseudo_header(src, dst, proto, len(segment)) + zeroed)
    if proto == 17 and value == 0:
        return 0xFFFF  # UDP: 0 means "no checksum", so a computed 0 is sent as 0xffff
    return value


@dataclass(frozen=True)
class Verdict:
    """A checksum field against netkit's own computation."""

    on_wire: int
    computed: int
    status: str  # "correct", "partial" (offload: pseudo-header sum only), "wrong", "none"
    note: str

    def as_dict(self) -> dict[str, int | str]:
        return {
            "on_wire": self.on_wire,
            "computed": self.computed,
            "status": self.status,
            "note": self.note,
        }


def verdict(src: str, dst: str, proto: int, segment: bytes, offset: int) -> Verdict:
    (on_wire,) = struct.unpack_from("!H", segment, offset)
    computed = transport_checksum(src, dst, proto, segment, offset)
    partial = ones_sum(pseudo_header(src, dst, proto, len(segment)))
    if proto == 17 and on_wire == 0:
        return Verdict(on_wire, computed, "none", "0: the sender computed no UDP checksum")
    if on_wire == computed:
        return Verdict(on_wire, computed, "correct", "correct")
    if on_wire == partial:
        return Verdict(
            on_wire,
            computed,
            "partial",
            f"{OFFLOAD_NOTE}; 0x{on_wire:04x} is the pseudo-header sum the NIC starts from, "
            f"the full checksum would be 0x{computed:04x}",
        )
    return Verdict(on_wire, computed, "wrong", f"wrong: should be 0x{computed:04x}")


def ipv4_verdict(header: bytes) -> Verdict:
    (on_wire,) = struct.unpack_from("!H", header, 10)
    computed = internet_checksum(header[:10] + b"\x00\x00" + header[12:])
    if on_wire == computed:
        return Verdict(on_wire, computed, "correct", "correct (IPv4 sums its header only)")
    return Verdict(on_wire, computed, "wrong", f"wrong: should be 0x{computed:04x}")

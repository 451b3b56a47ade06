"""Link, network and transport headers: parsed and built with :mod:`struct`.

Every header here is read the way the lecture teaches: a fixed layout of
big-endian ("network byte order", struct's ``!``) integers, unpacked in one
call, with the sub-byte fields (IPv4 version and header length, TCP flags)
taken apart with shifts and masks.  Each parser returns the values and the
list of :class:`Field` s it read, each with tshark's name for it, its byte
offset and bit width, so a renderer can draw the RFC diagram and point at
the bytes.  Each ``build_*`` function is the inverse, used by the tests.

No sockets here: bytes in, values out.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17

ETH = struct.Struct("!6s6sH")
SLL = struct.Struct("!HHH8sH")  # Linux cooked capture v1 (DLT_LINUX_SLL)
ARP = struct.Struct("!HHBBH6s4s6s4s")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPV6 = struct.Struct("!IHBB16s16s")
TCP = struct.Struct("!HHIIHHHH")
UDP = struct.Struct("!HHHH")


class Malformed(ValueError):
    """The bytes are too short or inconsistent for the header they should hold."""


@dataclass(frozen=True)
class Field:
    """One field of a header as it is on the wire.

    ``name`` is tshark's name (``ip.ttl``), or "" for a field tshark does
    not report on its own (reserved bits, an option's kind and length);
    ``offset`` is in bytes from the start of the header, ``bit`` counts from
    the top bit of that byte, ``bits`` is the width.  ``value`` is an int
    for numbers and text for addresses; ``shown`` is how a person reads it.
    """

    name: str
    label: str
    value: int | str
    offset: int
    bits: int
    bit: int = 0
    shown: str = ""
    wire: int | None = None  # the number on the wire, where tshark reports another (IHL 5 = 20)

    @property
    def display(self) -> str:
        return self.shown or str(self.value)

    @property
    def size(self) -> int:
        """Bytes the field touches."""
        return (self.bit + self.bits + 7) // 8


@dataclass(frozen=True)
class Header:
    """A parsed header: its kind (``eth``, ``ip`` ...), length and fields."""

    kind: str
    length: int
    fields: list[Field]
    values: dict[str, int | str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> int | str:
        return self.values[name]

    def num(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int)
        return value

    def text(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str)
        return value


def _header(kind: str, length: int, fields: list[Field], **extra: int | str) -> Header:
    values: dict[str, int | str] = {f.name: f.value for f in fields if f.name}
    values.update(extra)
    return Header(kind, length, fields, values)


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def hex_colon(raw: bytes) -> str:
    """Bytes as tshark writes a byte field: ``47:45:54``."""
    return ":".join(f"{b:02x}" for b in raw)


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise Malformed(f"{what}: {len(data)} bytes, at least {n} needed")


# -- Ethernet and Linux cooked capture ---------------------------------------------------


def parse_ethernet(data: bytes) -> Header:
    _need(data, ETH.size, "Ethernet header")
    dst, src, ethertype = ETH.unpack_from(data)
    return _header(
        "eth",
        ETH.size,
        [
            Field("eth.dst", "Destination MAC", mac_text(dst), 0, 48),
            Field("eth.src", "Source MAC", mac_text(src), 6, 48),
            Field("eth.type", "EtherType", ethertype, 12, 16, shown=f"0x{ethertype:04x}"),
        ],
    )


def build_ethernet(dst: str, src: str, ethertype: int) -> bytes:
    return ETH.pack(mac_bytes(dst), mac_bytes(src), ethertype)


def parse_sll(data: bytes) -> Header:
    """Linux cooked capture v1 (what a capture on the "any" device gives)."""
    _need(data, SLL.size, "Linux cooked header")
    pkttype, hatype, halen, addr, protocol = SLL.unpack_from(data)
    shown = mac_text(addr[: min(halen, 8)])
    return _header(
        "sll",
        SLL.size,
        [
            Field("sll.pkttype", "Packet type", pkttype, 0, 16),
            Field("sll.hatype", "Link-layer address type", hatype, 2, 16),
            Field("sll.halen", "Address length", halen, 4, 16),
            Field("sll.src.eth", "Source address", shown, 6, 64),
            Field("sll.etype", "Protocol", protocol, 14, 16, shown=f"0x{protocol:04x}"),
        ],
    )


# -- ARP -------------------------------------------------------------------------------------

ARP_OPS = {1: "request (who-has)", 2: "reply (is-at)"}


def parse_arp(data: bytes) -> Header:
    _need(data, ARP.size, "ARP packet")
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP.unpack_from(data)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        raise Malformed("ARP for other than Ethernet and IPv4")
    return _header(
        "arp",
        ARP.size,
        [
            Field("arp.hw.type", "Hardware type", htype, 0, 16, shown=f"{htype} (Ethernet)"),
            Field("arp.proto.type", "Protocol type", ptype, 2, 16, shown=f"0x{ptype:04x} (IPv4)"),
            Field("arp.hw.size", "HLEN", hlen, 4, 8),
            Field("arp.proto.size", "PLEN", plen, 5, 8),
            Field("arp.opcode", "Operation", op, 6, 16, shown=f"{op} {ARP_OPS.get(op, '')}"),
            Field("arp.src.hw_mac", "Sender MAC", mac_text(sha), 8, 48),
            Field("arp.src.proto_ipv4", "Sender IP", str(ipaddress.IPv4Address(spa)), 14, 32),
            Field("arp.dst.hw_mac", "Target MAC", mac_text(tha), 18, 48),
            Field("arp.dst.proto_ipv4", "Target IP", str(ipaddress.IPv4Address(tpa)), 24, 32),
        ],
    )


def build_arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    return ARP.pack(
        1,
        ETH_P_IP,
        6,
        4,
        op,
        mac_bytes(sha),
        ipaddress.IPv4Address(spa).packed,
        mac_bytes(tha),
        ipaddress.IPv4Address(tpa).packed,
    )


# -- IPv4 and IPv6 ---------------------------------------------------------------------------

PROTOCOLS = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", 1: "ICMP", 58: "ICMPv6"}


def parse_ipv4(data: bytes) -> Header:
    _need(data, IPV4.size, "IPv4 header")
    ver_ihl, tos, total, ident, flags_frag, ttl, proto, csum, src, dst = IPV4.unpack_from(data)
    version, ihl = ver_ihl >> 4, ver_ihl & 0x0F
    if version != 4 or ihl < 5:
        raise Malformed(f"not an IPv4 header (version {version}, IHL {ihl})")
    hdr_len = ihl * 4
    _need(data, hdr_len, "IPv4 header with options")
    fields = [
        Field("ip.version", "Version", version, 0, 4),
        Field(
            "ip.hdr_len",
            "IHL",
            hdr_len,
            0,
            4,
            bit=4,
            shown=f"{ihl} (×4 = {hdr_len} bytes)",
            wire=ihl,
        ),
        Field("ip.dsfield.dscp", "DSCP", tos >> 2, 1, 6),
        Field("ip.dsfield.ecn", "ECN", tos & 3, 1, 2, bit=6),
        Field("ip.len", "Total length", total, 2, 16),
        Field("ip.id", "Identification", ident, 4, 16, shown=f"0x{ident:04x} ({ident})"),
        Field("ip.flags.rb", "R", flags_frag >> 15, 6, 1),
        Field("ip.flags.df", "DF", (flags_frag >> 14) & 1, 6, 1, bit=1),
        Field("ip.flags.mf", "MF", (flags_frag >> 13) & 1, 6, 1, bit=2),
        Field(
            "ip.frag_offset",
            "Fragment offset",
            (flags_frag & 0x1FFF) * 8,
            6,
            13,
            bit=3,
            wire=flags_frag & 0x1FFF,
        ),
        Field("ip.ttl", "TTL", ttl, 8, 8),
        Field("ip.proto", "Protocol", proto, 9, 8, shown=f"{proto} ({PROTOCOLS.get(proto, '?')})"),
        Field("ip.checksum", "Header checksum", csum, 10, 16, shown=f"0x{csum:04x}"),
        Field("ip.src", "Source address", str(ipaddress.IPv4Address(src)), 12, 32),
        Field("ip.dst", "Destination address", str(ipaddress.IPv4Address(dst)), 16, 32),
    ]
    if hdr_len > IPV4.size:
        fields.append(Field("", "Options", hex_colon(data[20:hdr_len]), 20, 8 * (hdr_len - 20)))
    return _header("ip", hdr_len, fields)


def build_ipv4(
    src: str,
    dst: str,
    proto: int,
    payload_len: int,
    *,
    ident: int = 0,
    ttl: int = 64,
    df: bool = True,
    tos: int = 0,
    checksum: int | None = None,
) -> bytes:
    """A 20-byte IPv4 header; its checksum is computed unless given."""
    from netkit.protocols.checksum import internet_checksum

    fields = (
        0x45,
        tos,
        20 + payload_len,
        ident,
        0x4000 if df else 0,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    header = IPV4.pack(*fields)
    if checksum is None:
        checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:]


def parse_ipv6(data: bytes) -> Header:
    _need(data, IPV6.size, "IPv6 header")
    first, plen, nxt, hlim, src, dst = IPV6.unpack_from(data)
    version = first >> 28
    if version != 6:
        raise Malformed(f"not an IPv6 header (version {version})")
    tclass, flow = (first >> 20) & 0xFF, first & 0xFFFFF
    return _header(
        "ipv6",
        IPV6.size,
        [
            Field("ipv6.version", "Version", version, 0, 4),
            Field("ipv6.tclass", "Traffic class", tclass, 0, 8, bit=4, shown=f"0x{tclass:02x}"),
            Field("ipv6.flow", "Flow label", flow, 1, 20, bit=4, shown=f"0x{flow:05x}"),
            Field("ipv6.plen", "Payload length", plen, 4, 16),
            Field("ipv6.nxt", "Next header", nxt, 6, 8, shown=f"{nxt} ({PROTOCOLS.get(nxt, '?')})"),
            Field("ipv6.hlim", "Hop limit", hlim, 7, 8),
            Field("ipv6.src", "Source address", str(ipaddress.IPv6Address(src)), 8, 128),
            Field("ipv6.dst", "Destination address", str(ipaddress.IPv6Address(dst)), 24, 128),
        ],
    )


def build_ipv6(
    src: str,
    dst: str,
    nxt: int,
    payload_len: int,
    *,
    hlim: int = 64,
    tclass: int = 0,
    flow: int = 0,
) -> bytes:
    first = (6 << 28) | (tclass << 20) | flow
    return IPV6.pack(
        first,
        payload_len,
        nxt,
        hlim,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )


# -- TCP and UDP -----------------------------------------------------------------------------

# (mask, tshark name, label) from the top of the 16-bit offset/flags word down
TCP_FLAGS = (
    (0x0100, "tcp.flags.ae", "AE"),
    (0x0080, "tcp.flags.cwr", "CWR"),
    (0x0040, "tcp.flags.ece", "ECE"),
    (0x0020, "tcp.flags.urg", "URG"),
    (0x0010, "tcp.flags.ack", "ACK"),
    (0x0008, "tcp.flags.push", "PSH"),
    (0x0004, "tcp.flags.reset", "RST"),
    (0x0002, "tcp.flags.syn", "SYN"),
    (0x0001, "tcp.flags.fin", "FIN"),
)

TCP_OPTION_NAMES = {0: "EOL", 1: "NOP", 2: "MSS", 3: "WS", 4: "SACK_PERM", 5: "SACK", 8: "TS"}


_FLAG_ORDER = (
    (0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"),
    (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR"), (0x100, "AE"),
)  # fmt: skip


def tcp_flag_names(flags: int) -> list[str]:
    """The set flags in the order people say them: SYN+ACK, FIN+ACK, PSH+ACK."""
    return [label for mask, label in _FLAG_ORDER if flags & mask]


def _tcp_options(data: bytes, start: int, end: int) -> tuple[list[Field], dict[str, int]]:
    """The options between *start* and *end* of a TCP header (offsets into the header)."""
    fields: list[Field] = []
    found: dict[str, int] = {}
    i = start
    while i < end:
        kind = data[i]
        if kind == 0:  # end of option list: the rest is padding
            fields.append(Field("", "EOL", 0, i, 8 * (end - i)))
            break
        if kind == 1:
            fields.append(Field("", "NOP", 1, i, 8))
            i += 1
            continue
        if i + 1 >= end or data[i + 1] < 2 or i + data[i + 1] > end:
            raise Malformed(f"TCP option {kind} at byte {i} runs past the header")
        length = data[i + 1]
        body = data[i + 2 : i + length]
        name = TCP_OPTION_NAMES.get(kind, f"option {kind}")
        fields.append(Field("", f"{name} kind", kind, i, 8))
        fields.append(Field("", "len", length, i + 1, 8))
        if kind == 2 and length == 4:
            (mss,) = struct.unpack("!H", body)
            fields.append(Field("tcp.options.mss_val", "MSS", mss, i + 2, 16))
            found["mss"] = mss
        elif kind == 3 and length == 3:
            fields.append(
                Field(
                    "tcp.options.wscale.shift",
                    "Window scale",
                    body[0],
                    i + 2,
                    8,
                    shown=f"{body[0]} (×{1 << body[0]})",
                )
            )
            found["wscale"] = body[0]
        elif kind == 4 and length == 2:
            del fields[-2:]
            fields.append(Field("tcp.options.sack_perm", "SACK permitted", "04:02", i, 16))
            found["sack_perm"] = 1
        elif kind == 8 and length == 10:
            tsval, tsecr = struct.unpack("!II", body)
            fields.append(Field("tcp.options.timestamp.tsval", "TSval", tsval, i + 2, 32))
            fields.append(Field("tcp.options.timestamp.tsecr", "TSecr", tsecr, i + 6, 32))
        elif body:
            fields.append(Field("", name, hex_colon(body), i + 2, 8 * len(body)))
        i += length
    return fields, found


def parse_tcp(data: bytes) -> Header:
    _need(data, TCP.size, "TCP header")
    sport, dport, seq, ack, off_flags, window, csum, urg = TCP.unpack_from(data)
    hdr_len = (off_flags >> 12) * 4
    if hdr_len < TCP.size:
        raise Malformed(f"TCP data offset {hdr_len // 4} is below 5")
    _need(data, hdr_len, "TCP header with options")
    flags = off_flags & 0x01FF
    fields = [
        Field("tcp.srcport", "Source port", sport, 0, 16),
        Field("tcp.dstport", "Destination port", dport, 2, 16),
        Field("tcp.seq_raw", "Sequence number", seq, 4, 32),
        Field("tcp.ack_raw", "Acknowledgment number", ack, 8, 32),
        Field(
            "tcp.hdr_len",
            "Offset",
            hdr_len,
            12,
            4,
            shown=f"{hdr_len // 4} (×4 = {hdr_len})",
            wire=hdr_len // 4,
        ),
        Field("tcp.flags.res", "Rsv", (off_flags >> 9) & 7, 12, 3, bit=4),
    ]
    for n, (mask, name, label) in enumerate(TCP_FLAGS):
        fields.append(Field(name, label, 1 if flags & mask else 0, 12, 1, bit=7 + n))
    fields += [
        Field("tcp.window_size_value", "Window", window, 14, 16),
        Field("tcp.checksum", "Checksum", csum, 16, 16, shown=f"0x{csum:04x}"),
        Field("tcp.urgent_pointer", "Urgent pointer", urg, 18, 16),
    ]
    options, found = _tcp_options(data, TCP.size, hdr_len)
    fields += options
    return _header("tcp", hdr_len, fields, flags=flags, **found)


def build_tcp(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    *,
    options: bytes = b"",
    checksum: int = 0,
    urgent: int = 0,
) -> bytes:
    if len(options) % 4:
        raise ValueError("TCP options must be padded to a multiple of 4 bytes")
    offset = (TCP.size + len(options)) // 4
    return (
        TCP.pack(sport, dport, seq, ack, (offset << 12) | flags, window, checksum, urgent) + options
    )


def parse_udp(data: bytes) -> Header:
    _need(data, UDP.size, "UDP header")
    sport, dport, length, csum = UDP.unpack_from(data)
    return _header(
        "udp",
        UDP.size,
        [
            Field("udp.srcport", "Source port", sport, 0, 16),
            Field("udp.dstport", "Destination port", dport, 2, 16),
            Field("udp.length", "Length", length, 4, 16),
            Field("udp.checksum", "Checksum", csum, 6, 16, shown=f"0x{csum:04x}"),
        ],
    )


def build_udp(sport: int, dport: int, payload_len: int, checksum: int = 0) -> bytes:
    return UDP.pack(sport, dport, UDP.size + payload_len, checksum)

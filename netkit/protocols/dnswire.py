"""A DNS message read field by field (RFC 1035 section 4), with tshark's names.

dnspython builds and answers the messages of ``netkit anatomy dns``; this
reader is netkit's own so that every field can be pointed at in the bytes:
the 12-byte header (ID, flags, four counts), then each question (a name of
length-prefixed labels, type, class) and each resource record (name, type,
class, TTL, RDLENGTH, RDATA).  Names may point back into the message
(compression, RFC 1035 4.1.4); the pointer chain is bounded.
"""

from __future__ import annotations

import ipaddress
import struct

from netkit.protocols.frames import Field, Header, Malformed

HEADER = struct.Struct("!HHHHHH")
TYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    41: "OPT",
}
MAX_POINTERS = 32


def read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """The name at *offset* and the offset just past it (past the first pointer)."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    i = offset
    while True:
        if i >= len(msg):
            raise Malformed("DNS name runs past the message")
        n = msg[i]
        if n & 0xC0 == 0xC0:
            if i + 1 >= len(msg):
                raise Malformed("DNS name pointer cut short")
            if end is None:
                end = i + 2
            jumps += 1
            if jumps > MAX_POINTERS:
                raise Malformed("DNS name pointers loop")
            i = ((n & 0x3F) << 8) | msg[i + 1]
            continue
        if n & 0xC0:
            raise Malformed(f"DNS label type 0x{n & 0xC0:02x} is not supported")
        if n == 0:
            i += 1
            break
        label = msg[i + 1 : i + 1 + n]
        if len(label) < n:
            raise Malformed("DNS label runs past the message")
        labels.append(label.decode("utf-8", "surrogateescape"))
        i += 1 + n
    return (".".join(labels) if labels else "<Root>"), (end if end is not None else i)


def _flags(flags: int, response: bool) -> list[Field]:
    # (tshark name, label, first bit, width, only in responses)
    layout = (
        ("dns.flags.response", "QR", 0, 1, False),
        ("dns.flags.opcode", "Opcode", 1, 4, False),
        ("dns.flags.authoritative", "AA", 5, 1, True),
        ("dns.flags.truncated", "TC", 6, 1, False),
        ("dns.flags.recdesired", "RD", 7, 1, False),
        ("dns.flags.recavail", "RA", 8, 1, True),
        ("dns.flags.z", "Z", 9, 1, False),
        ("dns.flags.authenticated", "AD", 10, 1, True),
        ("dns.flags.checkdisable", "CD", 11, 1, False),
        ("dns.flags.rcode", "RCODE", 12, 4, True),
    )
    out = []
    for name, label, bit, width, only_response in layout:
        value = (flags >> (16 - bit - width)) & ((1 << width) - 1)
        shown = name if response or not only_response else ""
        out.append(Field(shown and name, label, value, 2 + bit // 8, width, bit=bit % 8))
    return out


def parse_dns(msg: bytes) -> Header:
    if len(msg) < HEADER.size:
        raise Malformed(f"DNS message: {len(msg)} bytes, 12 needed")
    ident, flags, qd, an, ns, ar = HEADER.unpack_from(msg)
    response = bool(flags & 0x8000)
    fields = [
        Field("dns.id", "ID", ident, 0, 16, shown=f"0x{ident:04x}"),
        *_flags(flags, response),
        Field("dns.count.queries", "QDCOUNT", qd, 4, 16),
        Field("dns.count.answers", "ANCOUNT", an, 6, 16),
        Field("dns.count.auth_rr", "NSCOUNT", ns, 8, 16),
        Field("dns.count.add_rr", "ARCOUNT", ar, 10, 16),
    ]
    i = HEADER.size
    questions: list[str] = []
    answers: list[str] = []
    for n in range(qd):
        name, j = read_name(msg, i)
        if j + 4 > len(msg):
            raise Malformed("DNS question cut short")
        qtype, qclass = struct.unpack_from("!HH", msg, j)
        first = n == 0  # JSON keeps the first question's fields (tshark repeats the names)
        fields += [
            Field("dns.qry.name" if first else "", "QNAME", name, i, 8 * (j - i)),
            Field(
                "dns.qry.type" if first else "",
                "QTYPE",
                qtype,
                j,
                16,
                shown=f"{qtype} ({TYPES.get(qtype, '?')})",
            ),
            Field("dns.qry.class" if first else "", "QCLASS", qclass, j + 2, 16),
        ]
        questions.append(f"{name} {TYPES.get(qtype, qtype)}")
        i = j + 4
    for n in range(an + ns + ar):
        name, j = read_name(msg, i)
        if j + 10 > len(msg):
            raise Malformed("DNS resource record cut short")
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, j)
        rdata = msg[j + 10 : j + 10 + rdlen]
        if len(rdata) < rdlen:
            raise Malformed("DNS RDATA runs past the message")
        first = n == 0 and an > 0
        prefix = "dns.resp." if first else ""
        pointer = ""
        if msg[i] & 0xC0 == 0xC0:
            target = ((msg[i] & 0x3F) << 8) | msg[i + 1]
            pointer = f"{name} (compressed: a pointer to byte {target} of the message)"
        fields += [
            Field(prefix and "dns.resp.name", "NAME", name, i, 8 * (j - i), shown=pointer),
            Field(
                prefix and "dns.resp.type",
                "TYPE",
                rtype,
                j,
                16,
                shown=f"{rtype} ({TYPES.get(rtype, '?')})",
            ),
            Field(prefix and "dns.resp.class", "CLASS", rclass, j + 2, 16),
            Field(prefix and "dns.resp.ttl", "TTL", ttl, j + 4, 32),
            Field(prefix and "dns.resp.len", "RDLENGTH", rdlen, j + 8, 16),
        ]
        value: str
        if rtype == 1 and rdlen == 4:
            value = str(ipaddress.IPv4Address(rdata))
            fields.append(Field("dns.a" if first else "", "RDATA (A)", value, j + 10, 32))
        elif rtype == 28 and rdlen == 16:
            value = str(ipaddress.IPv6Address(rdata))
            fields.append(Field("dns.aaaa" if first else "", "RDATA (AAAA)", value, j + 10, 128))
        elif rtype == 5:
            value, _ = read_name(msg, j + 10)
            fields.append(
                Field("dns.cname" if first else "", "RDATA (CNAME)", value, j + 10, 8 * rdlen)
            )
        else:
            value = rdata.hex(":")
            if rdlen:
                fields.append(Field("", "RDATA", value, j + 10, 8 * rdlen))
        if n < an:
            answers.append(f"{name} {TYPES.get(rtype, rtype)} {value}")
        i = j + 10 + rdlen
    return Header(
        "dns",
        i,
        fields,
        {
            **{f.name: f.value for f in fields if f.name},
            "flags": flags,
            "questions": "; ".join(questions),
            "answers": "; ".join(answers),
        },
    )

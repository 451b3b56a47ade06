"""IP address text forms, packed bytes and integers (inet_aton, inet_pton, htonl).

Pure functions, no sockets.  :func:`parse_strict` accepts only the canonical
forms (four decimal parts without leading zeros, RFC 4291 IPv6, or an
integer); :func:`parse_inet_aton` accepts exactly what glibc's
``inet_aton(3)`` accepts and says how it read the input.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HEX = set("0123456789abcdefABCDEF")
_OCT = set("01234567")
_DEC = set("0123456789")
_C_SPACE = set(" \t\n\v\f\r")  # isascii(c) && isspace(c) in the C locale
_AT_MOST = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)
_SHAPES = ("a (32 bits)", "a.b (8.24 bits)", "a.b.c (8.8.16 bits)", "a.b.c.d (8.8.8.8 bits)")


class Parsed(NamedTuple):
    address: IPAddress
    read_as: str


def _c_number(text: str, pos: int) -> tuple[int, int, str]:
    """strtoul(text + pos, &end, 0) for a run that starts with a digit.

    Returns (value, end position, base name).
    """
    if text.startswith(("0x", "0X"), pos) and text[pos + 2 : pos + 3] in _HEX:
        end = pos + 2
        while end < len(text) and text[end] in _HEX:
            end += 1
        return int(text[pos + 2 : end], 16), end, "hex"
    if text[pos] == "0":
        end = pos + 1
        while end < len(text) and text[end] in _OCT:
            end += 1
        digits = text[pos:end]
        return int(digits, 8), end, "octal" if len(digits) > 1 else "decimal"
    end = pos
    while end < len(text) and text[end] in _DEC:
        end += 1
    return int(text[pos:end]), end, "decimal"


def inet_aton(text: str) -> tuple[int, str] | None:
    """glibc ``inet_aton``: the 32-bit value and how it was read, or ``None``.

    Mirrors glibc's ``inet_aton_end``: 1 to 4 parts separated by '.', each a
    C integer (0x hex, leading-0 octal, else decimal); the last part fills
    the remaining bits; trailing text is allowed after ASCII white space.
    """
    parts: list[int] = []
    notes: list[str] = []
    pos = 0
    while True:
        if pos >= len(text) or text[pos] not in _DEC:
            return None
        value, end, base = _c_number(text, pos)
        if value > 0xFFFFFFFF:
            return None
        if base != "decimal":
            notes.append(f"{text[pos:end]!r} read as {base} {value}")
        pos = end
        if pos < len(text) and text[pos] == ".":
            if len(parts) > 2 or value > 0xFF:
                return None
            parts.append(value)
            pos += 1
            continue
        break
    if pos < len(text) and text[pos] not in _C_SPACE:
        return None
    if value > _AT_MOST[len(parts)]:
        return None
    result = value
    for i, byte in enumerate(parts):
        result |= byte << (24 - 8 * i)
    how = f"inet_aton form {_SHAPES[len(parts)]}"
    if notes:
        how += "; " + ", ".join(notes)
    if pos < len(text):
        how += f"; ignored trailing text '{text[pos:]}'"
    return result, how


def _strict_ipv4(text: str) -> IPAddress:
    parts = text.split(".")
    problems: list[str] = []
    lenient = False  # would --inet-aton accept it?
    if len(parts) != 4:
        problems.append(
            f"has {len(parts)} part{'s' if len(parts) != 1 else ''}; a dotted quad has 4"
        )
        lenient = 1 <= len(parts) <= 4
    for part in parts:
        if part == "":
            problems.append("has an empty part")
            lenient = False
        elif part[:2].lower() == "0x":
            problems.append(f"hex part {part!r}")
            lenient = lenient or len(parts) == 4
        elif not (part.isascii() and part.isdigit()):
            bad = next(c for c in part if not (c.isascii() and c.isdigit()))
            problems.append(f"unexpected character {bad!r} in part {part!r}")
            lenient = False
        elif len(part) > 1 and part[0] == "0":
            octal = f"octal {int(part, 8)}" if set(part) <= _OCT else "invalid octal"
            problems.append(f"part {part!r} has a leading zero, which inet_aton reads as {octal}")
            lenient = lenient or len(parts) == 4
        elif len(parts) == 4 and int(part) > 255:
            problems.append(f"part {part} is out of range 0-255")
    if problems:
        hint = " (--inet-aton accepts it)" if lenient and inet_aton(text) is not None else ""
        raise ValueError(f"{text!r}: " + "; ".join(problems) + hint)
    return ipaddress.IPv4Address(text)


def parse_integer(text: str) -> int | None:
    """A decimal or 0x-hex integer, or ``None`` if *text* is not one."""
    s = text
    if s[:2].lower() == "0x" and len(s) > 2 and set(s[2:]) <= _HEX:
        return int(s[2:], 16)
    if s and s.isascii() and s.isdigit():
        if len(s) > 1 and s[0] == "0":
            raise ValueError(
                f"{text!r} has a leading zero, which C reads as octal; "
                "write it without the zero, in 0x hex, or use --inet-aton"
            )
        return int(s)
    return None


def from_integer(value: int, version: int | None = None) -> IPAddress:
    if value < 0:
        raise ValueError(f"{value} is negative")
    if version == 6 or (version is None and value > 0xFFFFFFFF):
        if value >= 1 << 128:
            raise ValueError(f"{value} does not fit in 128 bits")
        return ipaddress.IPv6Address(value)
    if value > 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit in 32 bits (an IPv4 address); -6 for IPv6")
    return ipaddress.IPv4Address(value)


def parse_strict(text: str, version: int | None = None) -> Parsed:
    """Canonical forms only; ``ValueError`` says why anything else is refused."""
    if text == "":
        raise ValueError("empty address")
    if text != text.strip() or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} contains white space")
    number = parse_integer(text)
    if number is not None:
        addr = from_integer(number, version)
        base = "hex" if text[:2].lower() == "0x" else "decimal"
        return Parsed(addr, f"{base} integer, network byte order")
    if ":" in text:
        if version == 4:
            raise ValueError(f"{text!r} is an IPv6 address, not IPv4")
        try:
            return Parsed(ipaddress.IPv6Address(text), "IPv6 text (inet_pton)")
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv6 address: {exc}") from None
    if version == 6:
        raise ValueError(f"{text!r} is not an IPv6 address")
    return Parsed(_strict_ipv4(text), "dotted quad")


def parse_lenient(text: str, version: int | None = None) -> Parsed:
    """What C's ``inet_aton`` accepts for IPv4; IPv6 text as ``inet_pton`` reads it."""
    if ":" in text and version != 4:
        return parse_strict(text, version)
    got = inet_aton(text)
    if got is None:
        raise ValueError(f"{text!r} is not an address inet_aton accepts")
    value, how = got
    if version == 6:
        return Parsed(ipaddress.IPv6Address(value), how)
    return Parsed(ipaddress.IPv4Address(value), how)


def host_byteorder() -> str:
    return sys.byteorder


def host_order_integer(packed: bytes) -> int:
    """What a naive ``struct.unpack('=I', packed)`` gives on this machine."""
    return int.from_bytes(packed, sys.byteorder)


def pack_port(port: int) -> tuple[bytes, int]:
    """htons: the two bytes on the wire, and what ``unpack('=H')`` would read."""
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"{port} is out of range 0-65535 for a 16-bit port")
    packed = port.to_bytes(2, "big")
    return packed, int.from_bytes(packed, sys.byteorder)


_NOT_A_PORT = "is not a 16-bit port number (0-65535)"


def parse_port(text: str) -> int:
    """A port for ``--short``, as strict as :func:`parse_strict` is for addresses.

    ASCII decimal without leading zeros (``0`` itself is fine) or ``0x`` hex;
    ``' 80'``, ``'080'`` (C's ``strtol(s, 0)`` reads octal 64) and non-ASCII
    digits (Python's ``int()`` reads ``'٨٠'`` as 80) are refused with why.
    """
    if text == "":
        raise ValueError(f"an empty value {_NOT_A_PORT}")
    if text != text.strip() or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} {_NOT_A_PORT}: it contains white space")
    if text[:2].lower() == "0x":
        digits = text[2:]
        if not digits or not set(digits) <= _HEX:
            raise ValueError(f"{text!r} {_NOT_A_PORT}: 0x needs hex digits 0-9, a-f after it")
        value = int(digits, 16)
    else:
        bad = next((c for c in text if c not in _DEC), None)
        if bad is not None:
            why = (
                f"{bad!r} is not an ASCII digit 0-9"
                if bad.isdigit() or bad.isnumeric()
                else f"unexpected character {bad!r}"
            )
            raise ValueError(f"{text!r} {_NOT_A_PORT}: {why}")
        if len(text) > 1 and text[0] == "0":
            octal = (
                f"octal {int(text, 8)}"
                if set(text) <= _OCT
                else "octal, where 8 and 9 are no digits"
            )
            raise ValueError(
                f"{text!r} {_NOT_A_PORT}: it has a leading zero, which C's strtol(s, 0) reads "
                f"as {octal}; write it without the zero, or in 0x hex"
            )
        value = int(text)
    if value > 0xFFFF:
        raise ValueError(f"{text!r} {_NOT_A_PORT}: {value} is too large")
    return value


class Network(NamedTuple):
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    host_bits_set: bool  # the input named an address inside the network, not the network


def parse_network(text: str, version: int | None = None) -> Network:
    """``ADDRESS/PREFIX`` (or an IPv4 ``ADDRESS/NETMASK``), the address strict.

    The address part is read by :func:`parse_strict` (not an integer); the
    prefix is ASCII decimal without leading zeros.
    """
    addr_text, _, prefix = text.partition("/")
    if ":" not in addr_text and parse_integer(addr_text) is not None:
        raise ValueError(f"{text!r}: write the network's address as text (like 10.0.0.0/8)")
    addr = parse_strict(addr_text, version).address
    if prefix == "":
        raise ValueError(f"{text!r}: nothing after '/'; give a prefix length like /24")
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    if "." in prefix and addr.version == 4:
        mask = _strict_ipv4(prefix)
        try:
            net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
        except ValueError:
            raise ValueError(f"{text!r}: {prefix} is not a netmask (ones, then zeros)") from None
    else:
        most = addr.max_prefixlen
        if not (prefix.isascii() and prefix.isdigit()) or (len(prefix) > 1 and prefix[0] == "0"):
            raise ValueError(
                f"{text!r}: the prefix length {prefix!r} must be a decimal number 0-{most} "
                "without leading zeros"
            )
        if int(prefix) > most:
            raise ValueError(f"{text!r}: prefix length {prefix} is more than {most}")
        net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    return Network(net, net.network_address != addr)


def host_range(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> tuple[IPAddress, IPAddress, int]:
    """First and last usable host and how many (without listing them).

    IPv4: the network and broadcast addresses are not hosts, except in a /31
    (RFC 3021, point-to-point: both are) and a /32.  IPv6: every address but
    the Subnet-Router anycast address (the network address), except /127
    (RFC 6164) and /128 - the rules of Python's ``ipaddress.hosts()``.
    """
    first, last, size = net.network_address, net.broadcast_address, net.num_addresses
    if net.version == 4 and net.prefixlen < 31:
        return first + 1, last - 1, size - 2
    if net.version == 6 and net.prefixlen < 127:
        return first + 1, last, size - 1
    return first, last, size

"""pack-ip's protocol code: strict parsing, glibc inet_aton semantics, byte order."""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from netkit.protocols import ipaddr
from tests.profiles import examples


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("127.1", "has 2 parts"),
        ("0x7f.1", "hex part"),
        ("010.0.0.1", "leading zero"),
        ("1.2.3.4 junk", "white space"),
        ("256.1.1.1", "out of range"),
        ("", "empty"),
        ("1.2.3.", "empty part"),
        ("1.2.3.4.5", "has 5 parts"),
        ("1.2.3.x", "unexpected character"),
        ("010", "leading zero"),
        ("::g", "not an IPv6 address"),
    ],
)
def test_strict_rejects_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        ipaddr.parse_strict(text)


def test_strict_accepts_canonical_forms() -> None:
    assert str(ipaddr.parse_strict("192.168.1.1").address) == "192.168.1.1"
    assert str(ipaddr.parse_strict("3232235777").address) == "192.168.1.1"
    assert str(ipaddr.parse_strict("0xc0a80101").address) == "192.168.1.1"
    assert str(ipaddr.parse_strict("::1").address) == "::1"
    assert str(ipaddr.parse_strict("1", version=6).address) == "::1"
    assert ipaddr.parse_strict("4294967296").address.version == 6


@pytest.mark.parametrize(
    ("text", "address", "note"),
    [
        ("127.1", "127.0.0.1", "a.b (8.24 bits)"),
        ("010.0.0.1", "8.0.0.1", "'010' read as octal 8"),
        ("0x7f.1", "127.0.0.1", "'0x7f' read as hex 127"),
        ("1.2.3.4 junk", "1.2.3.4", "ignored trailing text"),
        ("1.2.300", "1.2.1.44", "a.b.c (8.8.16 bits)"),
        ("3232235777", "192.168.1.1", "a (32 bits)"),
    ],
)
def test_inet_aton_reads_like_c(text: str, address: str, note: str) -> None:
    parsed = ipaddr.parse_lenient(text)
    assert str(parsed.address) == address
    assert note in parsed.read_as
    assert socket.inet_aton(text) == parsed.address.packed


@pytest.mark.parametrize("text", ["256.1.1.1", "", "0x", "1..2", "08", "1.2.3.4.5", "4294967296"])
def test_inet_aton_rejects_what_c_rejects(text: str) -> None:
    assert ipaddr.inet_aton(text) is None
    with pytest.raises(OSError):
        socket.inet_aton(text)


def _c_inet_aton(text: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_aton(text), "big")
    except OSError:
        return None


PIECES = st.sampled_from(
    [
        "0",
        "1",
        "7",
        "8",
        "9",
        "00",
        "010",
        "08",
        "0x",
        "0X",
        "0x1f",
        "ff",
        "a",
        "g",
        ".",
        ".",
        ".",
        " ",
        "\t",
        "\n",
        "-",
        "+",
        "255",
        "256",
        "4294967295",
        "4294967296",
        "99999999999",
        "x",
        "junk",
        "0xffffffff",
        "0x100000000",
        "16777215",
        "16777216",
        "65535",
        "65536",
    ]
)


@settings(max_examples=examples(3000))
@given(st.lists(PIECES, max_size=8).map("".join))
@example("1.2.3.4 junk")
@example("0x7f.1")
def test_inet_aton_agrees_with_the_c_library(text: str) -> None:
    got = ipaddr.inet_aton(text)
    assert (got[0] if got else None) == _c_inet_aton(text)


@settings(max_examples=examples(2000))
@given(st.text(alphabet="0123456789abcdefxX. \t-", max_size=20))
def test_inet_aton_agrees_on_random_text(text: str) -> None:
    got = ipaddr.inet_aton(text)
    assert (got[0] if got else None) == _c_inet_aton(text)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_integer_round_trip_and_byte_order(value: int) -> None:
    addr = ipaddr.parse_strict(str(value)).address
    assert addr == ipaddr.parse_strict(hex(value)).address
    assert socket.inet_ntoa(addr.packed) == str(addr)
    assert struct.unpack("!I", addr.packed)[0] == value
    assert ipaddr.host_order_integer(addr.packed) == struct.unpack("=I", addr.packed)[0]
    assert str(ipaddr.parse_strict(str(addr)).address) == str(addr)


@given(st.integers(min_value=0, max_value=0xFFFF))
def test_port_packing_is_htons(port: int) -> None:
    packed, host = ipaddr.pack_port(port)
    assert packed == struct.pack("!H", port)
    assert host == struct.unpack("=H", packed)[0]
    assert socket.ntohs(socket.htons(port)) == port
    if sys.byteorder == "little":
        assert host == socket.htons(port)


def test_ipv6_packing_matches_inet_pton() -> None:
    parsed = ipaddr.parse_strict("2001:db8::1")
    assert parsed.address.packed == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert int(parsed.address) == int(ipaddress.IPv6Address("2001:db8::1"))

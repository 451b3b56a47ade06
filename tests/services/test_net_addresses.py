"""netkit.net's address tests say what ``ipaddress`` says, without importing it.

Every client asks :func:`netkit.net.is_ip_address` of its host before a
lookup, and ``creosote spew`` asks :func:`netkit.net.is_loopback` of its
peer; both use ``inet_pton`` so the clients start without ``ipaddress``.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.net import is_ip_address, is_loopback
from tests.profiles import examples

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
#: what addresses and near-misses are made of
ALPHABET = "0123456789abcdefABCDEF.:% x\x00\u0661"


def _ipaddress_says(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _near_misses() -> st.SearchStrategy[str]:
    octet = st.integers(0, 300).map(str) | st.sampled_from(["01", "007", "0x1", "", "-1"])
    quads = st.lists(octet, min_size=3, max_size=5).map(".".join)
    group = st.integers(0, 0x1FFFF).map(lambda n: format(n, "x"))
    sixes = st.lists(group | st.just(""), min_size=2, max_size=10).map(":".join)
    real = st.ip_addresses().map(str)
    scoped = st.tuples(real | sixes, st.sampled_from(["%lo", "%", "%eth0"])).map("".join)
    return st.text(ALPHABET, max_size=24) | quads | sixes | real | scoped


@settings(max_examples=examples(2000), deadline=None)
@given(_near_misses())
def test_is_ip_address_agrees_with_ipaddress(text: str) -> None:
    assert is_ip_address(text) == (_ipaddress_says(text) is not None)


@settings(max_examples=examples(1000), deadline=None)
@given(st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(str) | _near_misses())
def test_is_loopback_agrees_with_ipaddress(text: str) -> None:
    addr = _ipaddress_says(text)
    mapped = getattr(addr, "ipv4_mapped", None)  # (Python 3.13's is_loopback counts it too)
    assert is_loopback(text) == (
        addr is not None and (addr.is_loopback or (mapped is not None and mapped in LOOPBACK))
    )


def test_the_cases_people_type() -> None:
    assert is_ip_address("127.0.0.1") and is_ip_address("::1") and is_ip_address("fe80::1%lo")
    assert not is_ip_address("localhost") and not is_ip_address("1.2.3")
    assert not is_ip_address("01.2.3.4")  # a leading zero: neither says it is an address
    assert is_loopback("127.8.9.10") and is_loopback("::1") and is_loopback("::1%lo")
    assert is_loopback("::ffff:127.0.0.1")  # a dual-stack socket's view of 127.0.0.1
    assert not is_loopback("::ffff:128.0.0.1") and not is_loopback("::127.0.0.1")
    assert not is_loopback("128.0.0.1") and not is_loopback("localhost")

"""netkit anatomy's sans-IO parts: headers built and parsed back, checksums, DNS, HTTP, pcapng."""

from __future__ import annotations

import io
import itertools
import struct

import dns.message
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netkit.protocols import capture, checksum, frames
from netkit.protocols.dissect import Dissector
from netkit.protocols.dnswire import parse_dns, read_name
from netkit.protocols.frames import Malformed
from netkit.protocols.httphead import parse_http

macs = st.binary(min_size=6, max_size=6).map(frames.mac_text)
ipv4s = st.integers(0, 2**32 - 1).map(lambda n: ".".join(str(b) for b in n.to_bytes(4, "big")))
ipv6s = st.binary(min_size=16, max_size=16).map(
    lambda b: str(__import__("ipaddress").IPv6Address(b))
)
ports = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)


@given(macs, macs, st.integers(0, 0xFFFF))
def test_ethernet_round_trip(dst: str, src: str, ethertype: int) -> None:
    h = frames.parse_ethernet(frames.build_ethernet(dst, src, ethertype))
    assert (h["eth.dst"], h["eth.src"], h["eth.type"], h.length) == (dst, src, ethertype, 14)


@given(st.sampled_from([1, 2]), macs, ipv4s, macs, ipv4s)
def test_arp_round_trip(op: int, sha: str, spa: str, tha: str, tpa: str) -> None:
    h = frames.parse_arp(frames.build_arp(op, sha, spa, tha, tpa))
    assert h["arp.opcode"] == op
    assert (h["arp.src.hw_mac"], h["arp.src.proto_ipv4"]) == (sha, spa)
    assert (h["arp.dst.hw_mac"], h["arp.dst.proto_ipv4"]) == (tha, tpa)


@given(ipv4s, ipv4s, st.integers(0, 255), st.integers(0, 65515), st.integers(0, 0xFFFF))
def test_ipv4_round_trip_and_checksum(
    src: str, dst: str, proto: int, plen: int, ident: int
) -> None:
    raw = frames.build_ipv4(src, dst, proto, plen, ident=ident, ttl=7, tos=0xB9)
    h = frames.parse_ipv4(raw)
    assert (h["ip.src"], h["ip.dst"], h["ip.proto"], h["ip.len"]) == (src, dst, proto, 20 + plen)
    assert (h["ip.id"], h["ip.ttl"], h["ip.flags.df"], h["ip.hdr_len"]) == (ident, 7, 1, 20)
    assert (h["ip.dsfield.dscp"], h["ip.dsfield.ecn"]) == (0xB9 >> 2, 1)
    assert checksum.ones_sum(raw) == 0xFFFF  # a correct header sums to all ones
    assert checksum.ipv4_verdict(raw).status == "correct"
    bad = raw[:10] + bytes([raw[10] ^ 1]) + raw[11:]
    assert checksum.ipv4_verdict(bad).status == "wrong"


@given(ipv6s, ipv6s, st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 255))
def test_ipv6_round_trip(src: str, dst: str, nxt: int, plen: int, tclass: int) -> None:
    h = frames.parse_ipv6(frames.build_ipv6(src, dst, nxt, plen, tclass=tclass, flow=0xABCDE))
    assert (h["ipv6.src"], h["ipv6.dst"], h["ipv6.nxt"], h["ipv6.plen"]) == (src, dst, nxt, plen)
    assert (h["ipv6.tclass"], h["ipv6.flow"], h["ipv6.hlim"]) == (tclass, 0xABCDE, 64)


def _options(mss: int, ws: int, tsval: int, tsecr: int) -> bytes:
    return (
        struct.pack("!BBH", 2, 4, mss)
        + b"\x04\x02"
        + struct.pack("!BBII", 8, 10, tsval, tsecr)
        + b"\x01"
        + struct.pack("!BBB", 3, 3, ws)
    )


@given(ports, ports, u32, u32, st.integers(0, 0x1FF), st.integers(0, 0xFFFF), st.integers(0, 14))
def test_tcp_round_trip_with_options(
    sport: int, dport: int, seq: int, ack: int, flags: int, window: int, ws: int
) -> None:
    raw = frames.build_tcp(sport, dport, seq, ack, flags, window, options=_options(1460, ws, 7, 9))
    h = frames.parse_tcp(raw)
    assert (h["tcp.srcport"], h["tcp.dstport"]) == (sport, dport)
    assert (h["tcp.seq_raw"], h["tcp.ack_raw"], h["tcp.hdr_len"]) == (seq, ack, 40)
    assert h["flags"] == flags and h["tcp.window_size_value"] == window
    assert h["tcp.flags.syn"] == (flags >> 1) & 1 and h["tcp.flags.ae"] == flags >> 8
    assert (h["tcp.options.mss_val"], h["tcp.options.wscale.shift"]) == (1460, ws)
    assert (h["tcp.options.timestamp.tsval"], h["tcp.options.timestamp.tsecr"]) == (7, 9)
    assert h["tcp.options.sack_perm"] == "04:02"
    # every byte of the header belongs to exactly one field
    covered = sorted((f.offset * 8 + f.bit, f.offset * 8 + f.bit + f.bits) for f in h.fields)
    assert covered[0][0] == 0 and covered[-1][1] == 8 * len(raw)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))


def test_tcp_option_running_past_the_header_is_malformed() -> None:
    raw = frames.build_tcp(1, 2, 3, 4, 2, 5, options=b"\x02\x09\x00\x00")
    with pytest.raises(Malformed):
        frames.parse_tcp(raw)


@given(ipv4s, ipv4s, ports, ports, st.binary(max_size=64))
def test_udp_checksum_verdicts(src: str, dst: str, sport: int, dport: int, data: bytes) -> None:
    seg = frames.build_udp(sport, dport, len(data)) + data
    good = checksum.transport_checksum(src, dst, 17, seg, 6)
    filled = seg[:6] + struct.pack("!H", good) + seg[8:]
    assert checksum.verdict(src, dst, 17, filled, 6).status == "correct"
    partial = checksum.ones_sum(checksum.pseudo_header(src, dst, 17, len(seg)))
    offloaded = seg[:6] + struct.pack("!H", partial) + seg[8:]
    v = checksum.verdict(src, dst, 17, offloaded, 6)
    if partial != good:
        assert v.status == "partial" and checksum.OFFLOAD_NOTE in v.note
        assert v.computed == good


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
    assert checksum.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert checksum.internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_dns_query_and_answer_as_dnspython_builds_them() -> None:
    query = dns.message.make_query("www.example.test", "A", id=0x1A2B)
    q = parse_dns(query.to_wire())
    assert q["dns.id"] == 0x1A2B and q["dns.qry.name"] == "www.example.test"
    assert (q["dns.flags.response"], q["dns.qry.type"], q["dns.count.queries"]) == (0, 1, 1)
    assert "dns.flags.rcode" not in q.values  # tshark shows it for responses only
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.example.test.", 300, "IN", "A", "192.0.2.2"))
    a = parse_dns(response.to_wire())  # the answer's name is a compression pointer
    assert (a["dns.resp.name"], a["dns.resp.ttl"], a["dns.a"]) == (
        "www.example.test",
        300,
        "192.0.2.2",
    )
    assert a["dns.flags.response"] == 1 and a["dns.count.answers"] == 1


@given(st.lists(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), min_size=1, max_size=6))
def test_dns_names_round_trip(labels: list[str]) -> None:
    name = ".".join(labels)
    wire = b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"
    assert read_name(wire, 0) == (name, len(wire))


def test_dns_pointer_loop_is_malformed() -> None:
    msg = bytes(12) + b"\xc0\x0c"
    with pytest.raises(Malformed):
        read_name(msg, 12)


def test_http_request_and_response_heads() -> None:
    req = b"GET / HTTP/1.1\r\nHost: www.example.test:80\r\nUser-Agent: x\r\n\r\n"
    h = parse_http(req)
    assert (h["http.request.method"], h["http.request.uri"]) == ("GET", "/")
    assert h["http.host"] == "www.example.test:80" and h["http.user_agent"] == "x"
    host = next(f for f in h.fields if f.name == "http.host")
    assert req[host.offset : host.offset + host.size] == b"www.example.test:80"
    resp = parse_http(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert (resp["http.response.code"], resp["http.response.phrase"]) == (404, "Not Found")
    assert resp["http.content_length_header"] == "0"


def test_pcapng_round_trip() -> None:
    out = io.BytesIO()
    writer = capture.PcapngWriter(out, interface="lo")
    writer.write(b"\x01\x02\x03", 1_700_000_000_123_456, outbound=True)
    writer.write(b"\x04" * 61, 1_700_000_000_223_456)
    assert capture.read_pcapng(out.getvalue()) == [
        (1_700_000_000_123_456, b"\x01\x02\x03"),
        (1_700_000_000_223_456, b"\x04" * 61),
    ]


def test_port_filter_assembles_within_jump_range() -> None:
    prog = capture.port_filter([53, 80, 443, 8080], arp=True)
    assert prog[-1] == (0x06, 0, 0, 262144) and len(capture.filter_bytes(prog)) == 8 * len(prog)


def test_tcp_info_parse() -> None:
    raw = struct.pack("=8B21I", 1, 0, 0, 0, 0, 7, 0xA7, 0, *range(21))
    info = capture.parse_tcp_info(raw)
    assert info.state == "ESTABLISHED" and (info.snd_wscale, info.rcv_wscale) == (7, 10)
    assert (info.snd_mss, info.rtt_us, info.snd_cwnd) == (2, 15, 18)


# A SYN as captured on lo (netkit anatomy tcp): Ethernet, IPv4, TCP with options.
SYN = bytes.fromhex(
    "00000000000000000000000008004500003c7d1840004006bfa17f0000017f000001"
    "956e8e5d19776e4d00000000a002ffd7fe3000000204ffd70402080a1f7beaf80000000001030 30a".replace(
        " ", ""
    )
)


def test_dissect_captured_syn() -> None:
    layers = Dissector().dissect(SYN)
    assert [x.kind for x in layers] == ["eth", "ip", "tcp"]
    tcp = layers[2]
    assert tcp.json_fields()["tcp.flags.syn"] == 1 and tcp.json_fields()["tcp.seq"] == 0
    assert tcp.json_fields()["tcp.options.mss_val"] == 65495
    assert tcp.checksum is not None and tcp.checksum.status == "partial"
    assert layers[1].checksum is not None and layers[1].checksum.status == "correct"


def test_linux_cooked_header() -> None:
    raw = struct.pack("!HHH8sH", 4, 772, 6, bytes.fromhex("0102030405060000"), 0x0800)
    h = frames.parse_sll(raw)
    assert (h["sll.pkttype"], h["sll.hatype"], h["sll.etype"]) == (4, 772, 0x0800)
    assert h["sll.src.eth"] == "01:02:03:04:05:06"


def test_lecture_steps_of_a_captured_syn() -> None:
    from netkit.protocols.steps import direction, lecture_steps

    layers = [Dissector().dissect(SYN)]
    dirs = [direction(layers[0], {36445}, "127.0.0.1")]
    assert dirs == ["out"]
    steps = lecture_steps(layers, [len(SYN)], dirs, {"upper-server": 36445})
    assert steps[0]["step"] == "port and address of each end" and steps[0]["frames"] == [1]
    assert "server port 36445 ← client port 38254" in steps[0]["text"]

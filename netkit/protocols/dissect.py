"""One captured frame taken apart from the outside in: link, network, transport, application.

:class:`Dissector` keeps what tshark keeps between frames of one capture:
each TCP direction's initial sequence number (for relative sequence and
acknowledgment numbers) and window scale (for the scaled window), so its
fields can be compared with tshark's one for one.  Every layer carries its
header's fields with their offsets in the frame, the values derived from
earlier frames, and for TCP/UDP and IPv4 the checksum verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netkit.protocols import checksum, frames
from netkit.protocols.dnswire import parse_dns
from netkit.protocols.frames import Field, Header, Malformed, hex_colon
from netkit.protocols.httphead import looks_like_http, parse_http


@dataclass
class Layer:
    """One header of a frame; ``offset`` is where it starts in the frame."""

    kind: str
    offset: int
    header: Header
    derived: dict[str, int | str] = field(default_factory=dict)
    checksum: checksum.Verdict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fields(self) -> list[Field]:
        return self.header.fields

    def json_fields(self) -> dict[str, int | str]:
        """Every value with a tshark name: on-the-wire fields, then derived ones."""
        out: dict[str, int | str] = {f.name: f.value for f in self.header.fields if f.name}
        out.update(self.derived)
        return out

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"layer": self.kind, "fields": self.json_fields()}
        if self.checksum is not None:
            out["checksum"] = self.checksum.as_dict()
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class _Direction:
    isn: int
    wscale: int | None = None


class Dissector:
    """Dissects the frames of one capture in order; app ports say what runs above TCP/UDP."""

    def __init__(
        self,
        *,
        linktype: int = 1,
        dns_ports: frozenset[int] = frozenset(),
        http_ports: frozenset[int] = frozenset(),
        loopback: bool = True,
    ) -> None:
        self.linktype = linktype
        self.dns_ports = dns_ports
        self.http_ports = http_ports
        self.loopback = loopback
        self._tcp: dict[tuple[str, int, str, int], _Direction] = {}

    def dissect(self, frame: bytes) -> list[Layer]:
        layers: list[Layer] = []
        try:
            self._link(frame, layers)
        except Malformed as exc:
            if layers:
                layers[-1].notes.append(f"cut short: {exc}")
            else:
                raise
        return layers

    # -- link ------------------------------------------------------------------------------
    def _link(self, frame: bytes, layers: list[Layer]) -> None:
        if self.linktype == 113:
            link = frames.parse_sll(frame)
            ethertype = link.num("sll.etype")
        else:
            link = frames.parse_ethernet(frame)
            ethertype = link.num("eth.type")
        layer = Layer(link.kind, 0, link)
        if link.kind == "eth" and self.loopback:
            layer.notes.append(
                "all-zero MAC addresses: loopback has no hardware, so there is no ARP either "
                "(--netns shows real ones)"
            )
        layers.append(layer)
        rest = frame[link.length :]
        if ethertype == frames.ETH_P_ARP:
            arp = frames.parse_arp(rest)
            layer = Layer("arp", link.length, arp)
            if arp["arp.opcode"] == 1:
                layer.notes.append(
                    f"a broadcast: {arp['arp.src.proto_ipv4']} does not know the MAC address "
                    f"of {arp['arp.dst.proto_ipv4']} yet, so the target MAC is left zero"
                )
            elif arp["arp.opcode"] == 2:
                layer.notes.append(
                    f"the answer, sent straight back: {arp['arp.src.proto_ipv4']} is at "
                    f"{arp['arp.src.hw_mac']}; both ends keep it in their neighbour cache"
                )
            layers.append(layer)
        elif ethertype == frames.ETH_P_IP:
            self._ipv4(rest, link.length, layers)
        elif ethertype == frames.ETH_P_IPV6:
            self._ipv6(rest, link.length, layers)

    # -- network ---------------------------------------------------------------------------
    def _ipv4(self, data: bytes, at: int, layers: list[Layer]) -> None:
        ip = frames.parse_ipv4(data)
        layer = Layer("ip", at, ip, checksum=checksum.ipv4_verdict(data[: ip.length]))
        layers.append(layer)
        total = ip.num("ip.len")
        payload = data[ip.length : total]
        if ip.num("ip.frag_offset") or ip.num("ip.flags.mf"):
            layer.notes.append("a fragment: the transport header is in the first one")
            return
        self._transport(
            ip.num("ip.proto"),
            ip.text("ip.src"),
            ip.text("ip.dst"),
            payload,
            at + ip.length,
            layers,
        )

    def _ipv6(self, data: bytes, at: int, layers: list[Layer]) -> None:
        ip = frames.parse_ipv6(data)
        layers.append(Layer("ipv6", at, ip))
        payload = data[ip.length : ip.length + ip.num("ipv6.plen")]
        self._transport(
            ip.num("ipv6.nxt"),
            ip.text("ipv6.src"),
            ip.text("ipv6.dst"),
            payload,
            at + ip.length,
            layers,
        )

    # -- transport -------------------------------------------------------------------------
    def _transport(
        self, proto: int, src: str, dst: str, segment: bytes, at: int, layers: list[Layer]
    ) -> None:
        if proto == frames.IPPROTO_UDP:
            udp = frames.parse_udp(segment)
            payload = segment[udp.length : udp.num("udp.length")]
            if payload:
                udp.fields.append(
                    Field("udp.payload", "Data", hex_colon(payload), udp.length, 8 * len(payload))
                )
            layer = Layer(
                "udp", at, udp, checksum=checksum.verdict(src, dst, proto, segment, offset=6)
            )
            layers.append(layer)
            ports = {udp.num("udp.srcport"), udp.num("udp.dstport")}
            if payload and ports & self.dns_ports:
                layers.append(Layer("dns", at + udp.length, parse_dns(payload)))
        elif proto == frames.IPPROTO_TCP:
            tcp = frames.parse_tcp(segment)
            payload = segment[tcp.length :]
            if payload:
                tcp.fields.append(
                    Field("tcp.payload", "Data", hex_colon(payload), tcp.length, 8 * len(payload))
                )
            layer = Layer(
                "tcp", at, tcp, checksum=checksum.verdict(src, dst, proto, segment, offset=16)
            )
            layer.derived = self._tcp_derived(src, dst, tcp, len(payload))
            layers.append(layer)
            ports = {tcp.num("tcp.srcport"), tcp.num("tcp.dstport")}
            if payload and ports & self.http_ports and looks_like_http(payload):
                layers.append(Layer("http", at + tcp.length, parse_http(payload)))

    def _tcp_derived(self, src: str, dst: str, tcp: Header, length: int) -> dict[str, int | str]:
        """tshark's relative numbers: seq and ack counted from each side's ISN."""
        sport, dport = tcp.num("tcp.srcport"), tcp.num("tcp.dstport")
        key, back = (src, sport, dst, dport), (dst, dport, src, sport)
        flags = tcp.num("flags")
        seq, ack = tcp.num("tcp.seq_raw"), tcp.num("tcp.ack_raw")
        syn = bool(flags & 0x02)
        mine = self._tcp.get(key)
        if mine is None or syn:
            mine = _Direction(isn=seq, wscale=tcp.values.get("wscale") if syn else None)  # type: ignore[arg-type]
            self._tcp[key] = mine
        peer = self._tcp.get(back)
        rel_seq = (seq - mine.isn) % 2**32
        rel_ack = 0
        if flags & 0x10:
            rel_ack = (ack - peer.isn) % 2**32 if peer is not None else ack
        window = tcp.num("tcp.window_size_value")
        derived: dict[str, int | str] = {"tcp.seq": rel_seq, "tcp.ack": rel_ack, "tcp.len": length}
        if not syn and peer is not None and mine.wscale is not None and peer.wscale is not None:
            derived["tcp.window_size"] = window << mine.wscale
        elif syn:
            derived["tcp.window_size"] = window
        return derived

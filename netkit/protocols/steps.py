"""The lecture's steps found in a dissected exchange: which frames show what.

A person reading a capture asks the lecture's questions of it: which frames
turned the name into an address, which carried ARP's question and answer,
where the ports and addresses of both ends are, the handshake, the request
wrapped layer in layer, the reply, the close.  These functions answer them
from the dissected layers alone (no sockets, no capture).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from netkit.protocols.dissect import Layer


def direction(layers: list[Layer], server_ports: set[int], client_ip: str) -> str:
    """The direction of a frame: "out" when the client side sent it, "in" when it came back."""
    for layer in layers:
        if layer.kind == "arp":
            return "out" if layer.header["arp.src.proto_ipv4"] == client_ip else "in"
        if layer.kind in ("tcp", "udp"):
            return "in" if layer.header[f"{layer.kind}.srcport"] in server_ports else "out"
    return "out"


def _first(
    layers: list[list[Layer]], dirs: list[str], want: Callable[[list[Layer], str], bool]
) -> int | None:
    for n, (ls, d) in enumerate(zip(layers, dirs, strict=True)):
        if want(ls, d):
            return n
    return None


def _layer(ls: list[Layer], kind: str) -> Layer | None:
    return next((x for x in ls if x.kind == kind), None)


def _flags(ls: list[Layer]) -> int:
    tcp = _layer(ls, "tcp")
    return tcp.header.num("flags") if tcp is not None else 0


def _payload_len(ls: list[Layer]) -> int:
    tcp = _layer(ls, "tcp")
    if tcp is not None:
        return int(tcp.derived.get("tcp.len", 0))
    udp = _layer(ls, "udp")
    return udp.header.num("udp.length") - 8 if udp is not None else 0


def _encapsulation(ls: list[Layer], length: int) -> str:
    """ "GET / HTTP/1.1 (98 bytes) in a TCP segment (+32) in an IPv4 packet (+20) ..."""
    names = {"eth": "an Ethernet frame", "ip": "an IPv4 packet", "ipv6": "an IPv6 packet"}
    names |= {"tcp": "a TCP segment", "udp": "a UDP datagram", "sll": "a Linux cooked frame"}
    data = _payload_len(ls)
    top = ls[-1]
    if top.kind == "http":
        what = str(top.header.values.get("start_line", "HTTP"))
    elif top.kind == "dns":
        what = "a DNS message"
    else:
        what = "the data"
    parts = [f"{what} ({data} bytes)"]
    for layer in reversed(ls):
        if layer.kind in names:
            parts.append(f"in {names[layer.kind]} (+{layer.header.length})")
    return " ".join(parts) + f" = {length} bytes on the wire"


def _ends(ls: list[Layer], kind: str, note: str) -> str:
    """ "server port P ← client port C; SRC → DST" from a frame the client sent."""
    transport = _layer(ls, kind)
    ip = _layer(ls, "ip") or _layer(ls, "ipv6")
    assert transport is not None and ip is not None
    t, v = transport.header, ip.header
    return (
        f"server port {t[kind + '.dstport']}{note} ← client port {t[kind + '.srcport']}; "
        f"{v[ip.kind + '.src']} → {v[ip.kind + '.dst']}"
    )


def lecture_steps(
    L: list[list[Layer]], lengths: list[int], dirs: list[str], server_ports: dict[str, int]
) -> list[dict[str, Any]]:
    """The lecture's worked example, step by step, each with the frames that show it.

    *L* holds each frame's layers, *lengths* each frame's size, *dirs* each
    frame's direction ("out" from the client side); *server_ports* names the
    servers' ports (``dns``, ``http`` ...).
    """
    steps: list[dict[str, Any]] = []

    def add(step: str, frames: Sequence[int | None], text: str) -> None:
        shown = [n + 1 for n in frames if n is not None]
        if shown:
            steps.append({"step": step, "frames": shown, "text": text})

    who = _first(L, dirs, lambda ls, d: _layer(ls, "arp") is not None and d == "out")
    isat = _first(L, dirs, lambda ls, d: _layer(ls, "arp") is not None and d == "in")
    if isat is not None:
        arp = _layer(L[isat], "arp")
        assert arp is not None
        add(
            "next hop's MAC address (ARP)",
            [who, isat],
            f"who has {arp.header['arp.src.proto_ipv4']}? it is at {arp.header['arp.src.hw_mac']}",
        )
    q = _first(L, dirs, lambda ls, d: _layer(ls, "dns") is not None and d == "out")
    a = _first(L, dirs, lambda ls, d: _layer(ls, "dns") is not None and d == "in")
    if a is not None:
        dns_layer = _layer(L[a], "dns")
        assert dns_layer is not None
        add(
            "name → address (DNS)",
            [q, a],
            f"{dns_layer.header.values.get('answers', '')} "
            f"(over UDP; server port {server_ports.get('dns')} stands in for DNS's well-known 53)",
        )
    first_udp = _first(
        L,
        dirs,
        lambda ls, d: d == "out" and _layer(ls, "udp") is not None and "dns" not in server_ports,
    )
    if first_udp is not None:
        add("port and address of each end", [first_udp], _ends(L[first_udp], "udp", ""))
    syn = _first(L, dirs, lambda ls, d: _flags(ls) & 0x12 == 0x02)
    synack = _first(L, dirs, lambda ls, d: _flags(ls) & 0x12 == 0x12)
    if syn is not None:
        http = " (standing in for HTTP's well-known 80)" if "http" in server_ports else ""
        add("port and address of each end", [syn], _ends(L[syn], "tcp", http))
        ack = _first(
            L,
            dirs,
            lambda ls, d: synack is not None and d == "out" and _flags(ls) & 0x17 == 0x10,
        )
        add("three-way handshake (TCP)", [syn, synack, ack], "SYN, SYN+ACK, ACK")
    ask = _first(
        L, dirs, lambda ls, d: d == "out" and _payload_len(ls) > 0 and _layer(ls, "dns") is None
    )
    if ask is not None:
        add(
            "the request, layer in layer",
            [ask],
            _encapsulation(L[ask], lengths[ask]),
        )
    answer = _first(
        L, dirs, lambda ls, d: d == "in" and _payload_len(ls) > 0 and _layer(ls, "dns") is None
    )
    if answer is not None:
        add("the reply", [answer], _encapsulation(L[answer], lengths[answer]))
    fins = [n for n, ls in enumerate(L) if _flags(ls) & 0x01]
    if fins:
        last = fins[-1]
        closing = [
            n for n in range(fins[0], len(L)) if _layer(L[n], "tcp") is not None and n >= fins[0]
        ]
        add("the close (FIN, ACK both ways)", closing or [last], f"{len(closing)} segments")
    return steps

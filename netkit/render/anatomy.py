"""Human output of ``netkit anatomy``: field diagrams beside hexdumps, a sequence diagram, steps.

Each header is drawn as the RFCs draw it: 32 bits a row, each field a box
holding its name and its real value, and beside it the header's bytes, each
field's bytes in the colour of its box (and in the field list below with
their offsets in the frame, for a screen without colour).  Text from the
network (HTTP lines, DNS names, payloads) goes through ``escape()`` into
``Text`` objects like everywhere else.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from netkit.events.anatomy import (
    AnatomyExchange,
    AnatomyFrame,
    AnatomyNeighbours,
    AnatomySocket,
    AnatomySummary,
)
from netkit.protocols.dissect import Layer
from netkit.protocols.frames import Field, tcp_flag_names
from netkit.protocols.text import escape, truncate
from netkit.render.human import Handlers, HumanRenderer

HANDLERS = Handlers()

PALETTE = ("cyan", "green", "yellow", "magenta", "blue", "red", "bright_cyan", "bright_green")
TITLES = {
    "eth": "Ethernet II (IEEE 802.3)",
    "sll": "Linux cooked capture",
    "arp": "ARP (RFC 826)",
    "ip": "IPv4 (RFC 791)",
    "ipv6": "IPv6 (RFC 8200)",
    "tcp": "TCP (RFC 9293)",
    "udp": "UDP (RFC 768)",
    "dns": "DNS (RFC 1035)",
    "http": "HTTP/1.1 (RFC 9112)",
}
DIAGRAM = {"eth", "sll", "arp", "ip", "ipv6", "tcp", "udp"}
BITS = 32
DERIVED = {
    "tcp.seq": "relative: the raw number minus this side's initial one, from its SYN",
    "tcp.ack": "relative: the raw number minus the other side's initial one",
    "tcp.len": "payload bytes: IP total length minus both headers",
    "tcp.window_size": "the window times 2^shift, the shift from this side's SYN",
}
RULER = (
    " 0                   1                   2                   3\n"
    " 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1"
)
_STATE: dict[int, list[AnatomyFrame]] = {}


def _frames(r: HumanRenderer) -> list[AnatomyFrame]:
    return _STATE.setdefault(id(r), [])


def _value(f: Field) -> str:
    return escape(f.display)


def _cell(f: Field, width: int, first: bool) -> str:
    """What one box of the diagram says, fitted into *width* characters."""
    if not first:
        return "…".center(width)
    if f.bits == 1:
        return (f.label[0] if f.value else "·").center(width)
    number = f.value if f.wire is None else f.wire
    for text in (f"{f.label} {_value(f)}", _value(f), f"{f.label} {number}", str(number)):
        if len(text) <= width:
            return text.center(width)
    return truncate(_value(f), width)


def _owners(layer: Layer) -> dict[int, int]:
    """Frame offset -> number of the field that byte belongs to (the first one)."""
    owner: dict[int, int] = {}
    for n, f in enumerate(layer.fields):
        for i in range(f.offset, f.offset + f.size):
            owner.setdefault(layer.offset + i, n)
    return owner


def _hex_row(
    frame: bytes, at: int, end: int, owner: dict[int, int], colours: dict[int, str]
) -> Text:
    """Four bytes of the frame from *at*, with their offset, each in its field's colour."""
    out = Text(f"{at:04x}  ", style="dim")
    for i in range(at, min(at + 4, end)):
        out.append(f"{frame[i]:02x}", style=colours.get(owner.get(i, -1), "dim"))
        out.append(" ")
    return out


def diagram(frame: bytes, layer: Layer, end: int, colours: dict[int, str]) -> Text:
    """The RFC-style diagram of a header filled with the values, each row beside its 4 bytes."""
    limit = 8 * (end - layer.offset)
    # boxes per row: (start bit in the row, width in bits, field number, first part)
    rows: dict[int, list[tuple[int, int, int, bool]]] = {}
    for n, f in enumerate(layer.fields):
        start = f.offset * 8 + f.bit
        stop = min(start + f.bits, limit)
        first = True
        while start < stop:
            row, col = divmod(start, BITS)
            width = min(stop - start, BITS - col)
            rows.setdefault(row, []).append((col, width, n, first))
            start += width
            first = False
    owner = _owners(layer)
    out = Text(RULER + "\n", style="dim")
    border = "+" + "-+" * BITS
    out.append(border + "\n", style="dim")
    for row in sorted(rows):
        line = Text("|", style="dim")
        used = 0
        for col, width, n, first in sorted(rows[row]):
            if col > used:  # bits no field covers (padding)
                line.append(" " * (2 * (col - used) - 1) + "|", style="dim")
            chars = 2 * width - 1
            line.append(_cell(layer.fields[n], chars, first), style=colours.get(n, ""))
            line.append("|", style="dim")
            used = col + width
        line.append(" " * max(2 * BITS + 4 - len(line.plain), 1))
        line.append_text(_hex_row(frame, layer.offset + 4 * row, end, owner, colours))
        out.append_text(line)
        out.append("\n")
        out.append(border + "\n", style="dim")
    return out


def text_fields(frame: bytes, layer: Layer, colours: dict[int, str]) -> Table:
    """Fields of a text protocol or of a variable part (DNS names, HTTP lines) with their bytes."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column()
    table.add_column(no_wrap=True)
    for n, f in enumerate(layer.fields):
        if layer.kind == "dns" and f.offset < 12:
            continue
        first = layer.offset + f.offset
        raw = frame[first : first + min(f.size, 6)]
        more = " …" if f.size > 6 else ""
        table.add_row(
            Text(escape(f.label), style="bold " + colours.get(n, "")),
            Text(truncate(_value(f), 90)),
            Text(f"{first:04x}  {raw.hex(' ')}{more}", style=colours.get(n, "dim")),
        )
    return table


def field_list(layer: Layer, colours: dict[int, str], skip_payload: bool = True) -> Table:
    table = Table.grid(padding=(0, 2))
    for column in ("name", "value", "bytes"):
        table.add_column(column, no_wrap=column != "value")
    for n, f in enumerate(layer.fields):
        if skip_payload and f.name.endswith(".payload"):
            continue
        first = layer.offset + f.offset
        last = first + f.size - 1
        where = f"{first}" if first == last else f"{first}–{last}"
        if f.bits % 8 or f.bit:
            where += f" (bits {f.bit}–{f.bit + f.bits - 1})" if f.bits > 1 else f" (bit {f.bit})"
        name = Text(escape(f.name or f.label), style=colours.get(n, ""))
        value = Text(f"{escape(f.label)}: " if f.name else "", style="dim")
        value.append(truncate(_value(f), 100))
        table.add_row(name, value, Text(where, style="dim"))
    for key, val in layer.derived.items():
        why = DERIVED.get(key, "derived")
        table.add_row(
            Text(key), Text(f"{val}  ({why})", style="dim"), Text("not on the wire", style="dim")
        )
    return table


def _colours(layer: Layer) -> dict[int, str]:
    return {n: PALETTE[n % len(PALETTE)] for n in range(len(layer.fields))}


def _layer_end(layers: list[Layer], n: int, length: int) -> int:
    here = layers[n]
    if n + 1 < len(layers):
        return layers[n + 1].offset
    return min(length, here.offset + here.header.length)


def _checksum_line(layer: Layer) -> Text | None:
    v = layer.checksum
    if v is None:
        return None
    style = {"correct": "green", "partial": "yellow", "none": "dim"}.get(v.status, "bold red")
    line = Text(f"  checksum 0x{v.on_wire:04x}: ", style="bold")
    line.append(escape(v.note), style=style)
    return line


@HANDLERS.on(AnatomyExchange)
def _exchange(r: HumanRenderer, ev: AnatomyExchange) -> None:
    from rich.rule import Rule

    _STATE[id(r)] = []
    servers = ", ".join(f"{escape(k)} port {escape(v)}" for k, v in ev.servers.items())
    r.out.print(
        Rule(Text(f"netkit anatomy {ev.exchange} on {ev.interface}", style="bold"), align="left")
    )
    r.out.print(Text(f"servers: {servers}", style="bold"))
    for note in ev.notes:
        r.out.print(Text(f"· {escape(note)}", style="dim"))


@HANDLERS.on(AnatomyFrame)
def _frame(r: HumanRenderer, ev: AnatomyFrame) -> None:
    _frames(r).append(ev)
    frame = bytes.fromhex(ev.hex)
    layers: list[Layer] = ev.dissected or []
    arrow = "client → server" if ev.direction == "out" else "server → client"
    r.out.print()
    r.out.print(
        Text.assemble(
            (f"Frame {ev.index}", "bold reverse"),
            (f"  {arrow}  t={ev.time:.6f} s  {ev.length} bytes", "bold"),
        )
    )
    for n, layer in enumerate(layers):
        colours = _colours(layer)
        end = _layer_end(layers, n, len(frame))
        r.out.print(Text(f"\n{TITLES.get(layer.kind, layer.kind)}", style="bold underline"))
        if layer.kind in DIAGRAM:
            r.out.print(
                diagram(frame, layer, min(end, layer.offset + layer.header.length), colours)
            )
        elif layer.kind == "dns":
            r.out.print(diagram(frame, layer, layer.offset + 12, colours))
            r.out.print(text_fields(frame, layer, colours))
        else:
            r.out.print(text_fields(frame, layer, colours))
        if layer.kind == "tcp":
            flags = tcp_flag_names(layer.header.num("flags"))
            r.out.print(Text(f"  flags: {' '.join(flags) or 'none'}", style="bold"))
        if getattr(r, "show_fields", False):
            r.out.print(field_list(layer, colours))
        elif layer.derived:
            derived = ", ".join(f"{k} {v}" for k, v in layer.derived.items())
            r.out.print(Text(f"  not on the wire, counted as tshark does: {derived}", style="dim"))
        line = _checksum_line(layer)
        if line is not None:
            r.out.print(line)
        for note in layer.notes:
            r.out.print(Text(f"  note: {escape(note)}", style="dim"))
        payload = next((f for f in layer.fields if f.name.endswith(".payload")), None)
        if payload is not None and n == len(layers) - 1:
            data = frame[layer.offset + payload.offset :]
            r.out.print(Text.assemble(("  data: ", "bold"), (truncate(escape(data), 200), "")))


# -- the sequence diagram --------------------------------------------------------------------

_WIDTH = 44


def _label(ev: AnatomyFrame) -> str:
    layers: list[Layer] = ev.dissected or []
    kinds = {x.kind: x for x in layers}
    if "arp" in kinds:
        a = kinds["arp"].header
        if a["arp.opcode"] == 1:
            return f"ARP who has {a['arp.dst.proto_ipv4']}?"
        return f"ARP {a['arp.src.proto_ipv4']} is at {a['arp.src.hw_mac']}"
    if "dns" in kinds:
        d = kinds["dns"].header
        if d["dns.flags.response"]:
            return f"DNS answer {escape(str(d.values.get('answers', '')))}"
        return f"DNS query {escape(str(d.values.get('questions', '')))}"
    if "http" in kinds:
        return escape(str(kinds["http"].header.values.get("start_line", "HTTP")))
    if "tcp" in kinds:
        t = kinds["tcp"]
        flags = "+".join(tcp_flag_names(t.header.num("flags")))
        text = f"{flags} seq={t.derived['tcp.seq']} ack={t.derived['tcp.ack']}"
        length = int(t.derived.get("tcp.len", 0))
        return text + (f" len={length}" if length else "")
    if "udp" in kinds:
        u = kinds["udp"]
        data = next((str(f.value) for f in u.fields if f.name == "udp.payload"), "")
        return f"UDP {escape(bytes.fromhex(data.replace(':', '')))}"
    return "?"


def tcp_states(events: list[AnatomyFrame]) -> dict[int, tuple[str, str]]:
    """Frame index -> (client state, server state) after it, where one of them changed."""
    client, server = "CLOSED", "LISTEN"
    out: dict[int, tuple[str, str]] = {}
    for ev in events:
        layers: list[Layer] = ev.dissected or []
        tcp = next((x for x in layers if x.kind == "tcp"), None)
        if tcp is None:
            continue
        flags = tcp.header.num("flags")
        sender_is_client = ev.direction == "out"
        me, peer = (client, server) if sender_is_client else (server, client)
        if flags & 0x04:
            me, peer = "CLOSED", "CLOSED"
        elif flags & 0x02 and not flags & 0x10:
            me, peer = "SYN_SENT", "SYN_RCVD"
        elif flags & 0x12 == 0x12:
            me, peer = me, "ESTABLISHED"
        else:
            if flags & 0x10 and peer in ("SYN_RCVD",):
                peer = "ESTABLISHED"
            if flags & 0x10 and peer == "FIN_WAIT_1":
                peer = "FIN_WAIT_2"
            if flags & 0x10 and peer == "LAST_ACK":
                peer = "CLOSED"
            if flags & 0x10 and peer == "CLOSING":
                peer = "TIME_WAIT"
            if flags & 0x01:
                if me == "ESTABLISHED":
                    me = "FIN_WAIT_1"
                elif me == "CLOSE_WAIT":
                    me = "LAST_ACK"
                if peer in ("ESTABLISHED", "SYN_RCVD"):
                    peer = "CLOSE_WAIT"
                elif peer in ("FIN_WAIT_1",):
                    peer = "CLOSING"
                elif peer == "FIN_WAIT_2":
                    peer = "TIME_WAIT"
        new = (me, peer) if sender_is_client else (peer, me)
        if new != (client, server):
            out[ev.index] = new
        client, server = new
    return out


def sequence(events: list[AnatomyFrame], client: str, server: str) -> Text:
    out = Text()
    out.append(f"{'':>4} {'time':>9}  {client:<{_WIDTH + 2}}{server}\n", style="bold")
    states = tcp_states(events)
    for ev in events:
        label = truncate(_label(ev), _WIDTH - 6)
        if ev.direction == "out":
            arrow = f"── {label} " + "─" * max(_WIDTH - len(label) - 5, 1) + "▶"
        else:
            arrow = "◀" + "─" * max(_WIDTH - len(label) - 5, 1) + f" {label} ──"
        out.append(f"{ev.index:>4} {ev.time:>9.6f}  ", style="dim")
        out.append("|" + arrow + "|", style="cyan" if ev.direction == "out" else "green")
        if ev.index in states:
            c, s = states[ev.index]
            out.append(f"  client {c}, server {s}", style="yellow")
        out.append("\n")
    return out


def _ends(events: list[AnatomyFrame]) -> tuple[str, str]:
    for ev in events:
        layers: list[Layer] = ev.dissected or []
        ip = next((x for x in layers if x.kind in ("ip", "ipv6")), None)
        if ip is not None and ev.direction == "out":
            v = ip.kind
            return f"client {ip.header[v + '.src']}", f"server {ip.header[v + '.dst']}"
    return "client", "server"


@HANDLERS.on(AnatomySummary)
def _summary(r: HumanRenderer, ev: AnatomySummary) -> None:
    from rich.rule import Rule

    events = _STATE.pop(id(r), [])
    if events:
        r.out.print()
        r.out.print(Rule(Text("The exchange, frame by frame", style="bold"), align="left"))
        client, server = _ends(events)
        r.out.print(sequence(events, client, server))
    if ev.steps:
        r.out.print(Rule(Text("The lecture's steps", style="bold"), align="left"))
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for step in ev.steps:
            frames = step["frames"]
            span = f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}–{frames[-1]}"
            table.add_row(
                Text(escape(step["step"]), style="bold"),
                Text(span, style="cyan"),
                Text(escape(step["text"])),
            )
        r.out.print(table)
    if not ev.counts.get("captured", 1):
        r.status(Text("nothing captured (--no-capture): only what the sockets told", style="bold"))
        return
    tail = f"{ev.frames} frames shown"
    if ev.duplicates_dropped:
        tail += f"; {ev.duplicates_dropped} outgoing duplicates dropped (loopback shows each twice)"
    if ev.pcap:
        tail += f"; written to {escape(ev.pcap)} (pcapng: wireshark, tshark -r)"
    r.status(Text(tail, style="bold"))


@HANDLERS.on(AnatomyNeighbours)
def _neighbours(r: HumanRenderer, ev: AnatomyNeighbours) -> None:
    entries = ", ".join(
        f"{escape(e['address'])} at {escape(e['mac'])} ({escape(e['state'])})" for e in ev.entries
    )
    r.out.print(
        Text.assemble(
            (f"neighbour cache of the {ev.side} ", "bold"),
            (f"({escape(ev.address)}, MAC {escape(ev.mac)}) {ev.when}: ", ""),
            (entries or "empty", "yellow" if entries else "dim"),
        )
    )


@HANDLERS.on(AnatomySocket)
def _socket(r: HumanRenderer, ev: AnatomySocket) -> None:
    line = Text.assemble(
        (f"{escape(ev.role)} ({ev.transport}) ", "bold"),
        (f"getsockname() {escape(ev.local)}  getpeername() {escape(ev.peer)}", ""),
    )
    r.out.print(line)
    info: dict[str, Any] = ev.tcp_info or {}
    if info:
        shown = ", ".join(f"{k} {escape(str(v))}" for k, v in info.items())
        r.out.print(Text(f"  TCP_INFO: {shown}", style="dim"))

"""Human output for pack-ip: an address, port or network in every form, aligned.

Line handlers (:mod:`netkit.render.lite`): written without loading rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.pack_ip import AddressPacked, NetworkInfo, PortPacked
from netkit.protocols.text import escape
from netkit.render.lite import Handlers, Line, LineHandlers, Lines, Rows, View, prose

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


def _spaced_hex(hexstr: str) -> str:
    return " ".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2))


@LINES.on(AddressPacked)
def address_lines(r: View, ev: AddressPacked) -> Lines:
    fam = f"IPv{ev.family}"
    lines: list[Line] = [
        Line((escape(ev.address), "bold"), (f"  {fam}, read as {escape(ev.read_as)}", "dim"))
    ]
    grid = Rows()
    nbytes = len(ev.packed) // 2
    grid.add_row(
        "packed",
        _spaced_hex(ev.packed),
        f"inet_{'aton' if ev.family == 4 else 'pton'}(): {nbytes} bytes, network byte order",
    )
    width = 8 * nbytes
    unpack = "struct.unpack('!I', packed)[0]" if ev.family == 4 else "int.from_bytes(packed, 'big')"
    grid.add_row("integer", f"{ev.integer}", f"{width}-bit, network order: {unpack}")
    grid.add_row("hex", f"0x{ev.integer:0{nbytes * 2}x}", "")
    if ev.mapped_ipv4 is not None:
        grid.add_row("IPv4", ev.mapped_ipv4, "IPv4-mapped IPv6 address (::ffff:0:0/96, RFC 4291)")
    if ev.host_order_integer is not None:
        grid.add_row(
            "host order",
            f"{ev.host_order_integer} (0x{ev.host_order_integer:08x})",
            f"struct.unpack('=I', packed)[0] on this {ev.host_byteorder}-endian machine",
        )
    lines += grid.lines()
    if ev.family == 4:
        if ev.host_byteorder == "little":
            note = (
                "Network byte order is big-endian: the most significant byte goes first on "
                "the wire. This machine is little-endian, so htonl()/ntohl() reverse the four "
                "bytes, and reading the packed bytes in host order gives the second number."
            )
        else:
            note = (
                "Network byte order is big-endian, like this machine: htonl()/ntohl() change "
                "nothing here."
            )
        lines += prose(r, note)
    elif ev.mapped_ipv4 is not None:
        lines += prose(
            r,
            f"This IPv6 address names the IPv4 address {ev.mapped_ipv4}: a dual-stack "
            "socket shows IPv4 peers this way, and connecting to it reaches the IPv4 host.",
        )
    return [("out", line) for line in lines]


@LINES.on(PortPacked)
def port_lines(r: View, ev: PortPacked) -> Lines:
    grid = Rows()
    grid.add_row("port", f"{ev.port}", "host integer")
    grid.add_row("packed", _spaced_hex(ev.packed), "htons(): 2 bytes, network byte order")
    grid.add_row(
        "host order",
        f"{ev.host_order_integer} (0x{ev.host_order_integer:04x})",
        f"struct.unpack('=H', packed)[0] on this {ev.host_byteorder}-endian machine",
    )
    lines = grid.lines()
    if ev.host_byteorder == "little":
        lines += prose(
            r,
            "htons() swaps the two bytes on this little-endian machine; ntohs() swaps "
            "them back. Forgetting one of them turns the port into the last number.",
        )
    return [("out", line) for line in lines]


@LINES.on(NetworkInfo)
def network_lines(r: View, ev: NetworkInfo) -> Lines:
    lines = [Line((ev.network, "bold"), (f"  IPv{ev.family} network, /{ev.prefix_length}", "dim"))]
    grid = Rows()
    grid.add_row("netmask", ev.netmask, f"{ev.prefix_length} one bits, then zeros")
    grid.add_row("hostmask", ev.hostmask, "the host part (wildcard mask)")
    if ev.broadcast is not None:
        grid.add_row("broadcast", ev.broadcast, "every host bit set")
    hosts = "host" if ev.hosts == 1 else "hosts"
    grid.add_row("hosts", f"{ev.first_host} - {ev.last_host}", f"{ev.hosts:,} {hosts}")
    grid.add_row("addresses", f"{ev.addresses:,}", "")
    lines += grid.lines()
    notes = []
    if ev.host_bits_set:
        notes.append(f"{ev.input} names an address inside the network {ev.network}.")
    if ev.family == 4 and ev.prefix_length == 31:
        notes.append("A /31 is a point-to-point link (RFC 3021): both addresses are hosts.")
    elif ev.family == 4 and ev.prefix_length < 31:
        notes.append("The first (network) and last (broadcast) addresses are not hosts.")
    elif ev.family == 6 and ev.prefix_length < 127:
        notes.append(
            "The first address is the Subnet-Router anycast address; IPv6 has no broadcast."
        )
    if notes:
        lines += prose(r, " ".join(notes))
    return [("out", line) for line in lines]


@HANDLERS.on(AddressPacked)
def _address(r: HumanRenderer, ev: AddressPacked) -> None:
    r.print_lines(address_lines(r, ev))


@HANDLERS.on(PortPacked)
def _port(r: HumanRenderer, ev: PortPacked) -> None:
    r.print_lines(port_lines(r, ev))


@HANDLERS.on(NetworkInfo)
def _network(r: HumanRenderer, ev: NetworkInfo) -> None:
    r.print_lines(network_lines(r, ev))

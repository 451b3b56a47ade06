"""Human output for pack-ip: an address or port in every form, aligned."""

from __future__ import annotations

from rich.text import Text

from netkit.events.pack_ip import AddressPacked, PortPacked
from netkit.protocols.text import escape
from netkit.render.human import Handlers, HumanRenderer, Rows

HANDLERS = Handlers()


def _spaced_hex(hexstr: str) -> str:
    return " ".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2))


@HANDLERS.on(AddressPacked)
def _address(r: HumanRenderer, ev: AddressPacked) -> None:
    fam = f"IPv{ev.family}"
    r.out.print(
        Text.assemble(
            (escape(ev.address), "bold"),
            (f"  {fam}, read as {escape(ev.read_as)}", "dim"),
        )
    )
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
    if ev.host_order_integer is not None:
        grid.add_row(
            "host order",
            f"{ev.host_order_integer} (0x{ev.host_order_integer:08x})",
            f"struct.unpack('=I', packed)[0] on this {ev.host_byteorder}-endian machine",
        )
    grid.print(r.out)
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
        r.out.print(Text(note, style="dim"))


@HANDLERS.on(PortPacked)
def _port(r: HumanRenderer, ev: PortPacked) -> None:
    grid = Rows()
    grid.add_row("port", f"{ev.port}", "host integer")
    grid.add_row("packed", _spaced_hex(ev.packed), "htons(): 2 bytes, network byte order")
    grid.add_row(
        "host order",
        f"{ev.host_order_integer} (0x{ev.host_order_integer:04x})",
        f"struct.unpack('=H', packed)[0] on this {ev.host_byteorder}-endian machine",
    )
    grid.print(r.out)
    if ev.host_byteorder == "little":
        r.out.print(
            Text(
                "htons() swaps the two bytes on this little-endian machine; ntohs() swaps "
                "them back. Forgetting one of them turns the port into the last number.",
                style="dim",
            )
        )

"""netkit pack-ip: inet_aton / inet_ntoa, htonl / ntohl, htons / ntohs."""

from __future__ import annotations

import click

from netkit.cli._common import family_options, handle_failures, output_options, renderer


@click.command("pack-ip")
@click.argument("value")
@click.option(
    "--inet-aton",
    "lenient",
    is_flag=True,
    help="Accept what C's inet_aton() accepts (127.1, 0x7f.1, 010.0.0.1 as octal) "
    "and show how it was read.",
)
@click.option(
    "-s",
    "--short",
    is_flag=True,
    help="VALUE is a 16-bit port number: show htons()/ntohs().",
)
@family_options
@output_options
@handle_failures
def pack_ip(
    value: str, lenient: bool, short: bool, version: int | None, json_output: bool, no_color: bool
) -> None:
    """Show an address as text, packed bytes and integers, in network and host byte order.

    VALUE is an IPv4 or IPv6 address (192.168.1.1, ::1), or an integer in
    decimal or 0x hex (3232235777, 0xc0a80101) to convert the other way.
    Strict by default: only canonical dotted quads are accepted.

    \b
    Examples:
      netkit pack-ip 192.168.1.1
      netkit pack-ip 0xc0a80101
      netkit pack-ip --inet-aton 127.1
      netkit pack-ip --short 8080
    """
    from netkit.events.pack_ip import AddressPacked, PortPacked
    from netkit.protocols import ipaddr

    out = renderer(json_output, no_color)
    if short:
        try:
            port = int(value, 0) if value[:2].lower() == "0x" else int(value, 10)
            packed, host_value = ipaddr.pack_port(port)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a 16-bit port number (0-65535)", param_hint="'VALUE'"
            ) from None
        out(
            PortPacked(
                port=port,
                packed=packed.hex(),
                host_order_integer=host_value,
                host_byteorder=ipaddr.host_byteorder(),
            )
        )
        out.close()
        return
    try:
        parse = ipaddr.parse_lenient if lenient else ipaddr.parse_strict
        parsed = parse(value, version)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'VALUE'") from None
    addr = parsed.address
    packed = addr.packed
    out(
        AddressPacked(
            input=value,
            address=str(addr),
            family=addr.version,
            packed=packed.hex(),
            integer=int(addr),
            host_order_integer=ipaddr.host_order_integer(packed) if addr.version == 4 else None,
            host_byteorder=ipaddr.host_byteorder(),
            read_as=parsed.read_as,
        )
    )
    out.close()

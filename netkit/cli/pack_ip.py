"""netkit pack-ip: inet_aton / inet_ntoa, htonl / ntohl, htons / ntohs, networks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from netkit.cli._common import family_options, handle_failures, output_options, renderer

if TYPE_CHECKING:
    from netkit.events import Event

MAX_LINE = 4096  # a value read from stdin longer than this is refused, not kept


@click.command("pack-ip")
@click.argument("values", metavar="[VALUE]...", nargs=-1)
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
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print only the converted value, one a line: the address for an integer, the "
    "integer for an address, the network for ADDRESS/PREFIX, the htons() value with --short.",
)
@family_options
@output_options
@handle_failures
def pack_ip(
    values: tuple[str, ...],
    lenient: bool,
    short: bool,
    quiet: bool,
    version: int | None,
    json_output: bool,
    no_color: bool,
) -> None:
    """Show an address as text, packed bytes and integers, in network and host byte order.

    VALUE is an IPv4 or IPv6 address (192.168.1.1, ::1), an integer in
    decimal or 0x hex (3232235777, 0xc0a80101) to convert the other way, or
    a network ADDRESS/PREFIX (192.168.1.0/24) to show its mask, broadcast
    address and host range.  Strict by default: only canonical dotted quads
    and plain decimal numbers are accepted.  Several VALUEs give one result
    each; with none, or -, values are read from stdin, one a line.  A bad
    value is reported and the others still shown (exit 2 at the end).

    \b
    Examples:
      netkit pack-ip 192.168.1.1
      netkit pack-ip -q 3232235777          prints 192.168.1.1
      netkit pack-ip 192.168.1.0/24
      netkit pack-ip --inet-aton 127.1
      netkit pack-ip --short 8080
      cut -f1 hosts.txt | netkit pack-ip -q
    """
    if quiet and json_output:
        raise click.UsageError("-q prints bare values and --json objects; give one of them")
    missing = "Missing argument 'VALUE' (give one, or - to read values from stdin)"
    if not values and sys.stdin.isatty():
        raise click.UsageError(missing)
    out = None if quiet else renderer(json_output, no_color)
    single = len(values) == 1 and values[0] != "-"
    bad = seen = 0
    for value in _values(values):
        seen += 1
        try:
            event = _convert(value, lenient=lenient, short=short, version=version)
        except ValueError as exc:
            if single:
                raise click.BadParameter(str(exc), param_hint="'VALUE'") from None
            bad += 1
            if json_output and out is not None:  # one object per value, bad ones too
                from netkit.events.pack_ip import InvalidValue

                out(InvalidValue(input=value, error=str(exc)))
            click.echo(f"Error: Invalid value for 'VALUE': {exc}", err=True)
            continue
        if out is None:
            click.echo(_bare(event))
        else:
            out(event)
    if out is not None:
        out.close()
    if not values and not seen:
        raise click.UsageError(f"{missing}; stdin had none")
    if bad:
        sys.exit(2)


def _values(values: tuple[str, ...]) -> Iterator[str]:
    """The arguments in order; ``-`` (or no argument) reads stdin line by line."""
    for value in values or ("-",):
        if value != "-":
            yield value
            continue
        stream = sys.stdin
        while True:
            line = stream.readline(MAX_LINE + 2)
            if line == "":
                return
            text = line.rstrip("\r\n")
            if len(text) > MAX_LINE:
                raise click.UsageError(f"a line on stdin is longer than {MAX_LINE} characters")
            if text.strip():  # blank lines separate nothing: skip them
                yield text


def _convert(value: str, *, lenient: bool, short: bool, version: int | None) -> Event:
    from netkit.protocols import ipaddr

    if short:
        from netkit.events.pack_ip import PortPacked

        port = ipaddr.parse_port(value)
        packed, host_value = ipaddr.pack_port(port)
        return PortPacked(
            port=port,
            packed=packed.hex(),
            host_order_integer=host_value,
            host_byteorder=ipaddr.host_byteorder(),
            input=value,
        )
    if "/" in value:
        return _network(value, version)
    from netkit.events.pack_ip import AddressPacked

    parse = ipaddr.parse_lenient if lenient else ipaddr.parse_strict
    parsed = parse(value, version)
    addr = parsed.address
    packed = addr.packed
    mapped = getattr(addr, "ipv4_mapped", None)
    return AddressPacked(
        input=value,
        address=str(addr),
        family=addr.version,
        packed=packed.hex(),
        integer=int(addr),
        host_order_integer=ipaddr.host_order_integer(packed) if addr.version == 4 else None,
        host_byteorder=ipaddr.host_byteorder(),
        read_as=parsed.read_as,
        mapped_ipv4=str(mapped) if mapped is not None else None,
    )


def _network(value: str, version: int | None) -> Event:
    from netkit.events.pack_ip import NetworkInfo
    from netkit.protocols import ipaddr

    parsed = ipaddr.parse_network(value, version)
    net = parsed.network
    first, last, hosts = ipaddr.host_range(net)
    return NetworkInfo(
        input=value,
        network=str(net),
        family=net.version,
        prefix_length=net.prefixlen,
        netmask=str(net.netmask),
        hostmask=str(net.hostmask),
        broadcast=str(net.broadcast_address) if net.version == 4 else None,
        first_host=str(first),
        last_host=str(last),
        addresses=net.num_addresses,
        hosts=hosts,
        host_bits_set=parsed.host_bits_set,
    )


def _bare(event: Event) -> str:
    """-q: the converted value alone."""
    from netkit.events.pack_ip import AddressPacked, NetworkInfo, PortPacked

    if isinstance(event, PortPacked):
        return str(event.host_order_integer)
    if isinstance(event, NetworkInfo):
        return event.network
    assert isinstance(event, AddressPacked)
    from netkit.protocols.ipaddr import parse_integer

    try:
        was_integer = parse_integer(event.input) is not None
    except ValueError:  # --inet-aton forms like 010 are addresses, not integers
        was_integer = False
    return event.address if was_integer else str(event.integer)

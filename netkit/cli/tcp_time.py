"""netkit tcp-time: RFC 867 daytime / RFC 868 time server and client."""

from __future__ import annotations

import click

from netkit.cli._common import (
    client_options,
    endpoint,
    handle_failures,
    positional_endpoint,
    renderer,
    run_server,
    server_options,
)
from netkit.protocols.timeproto import PROTOCOLS

DEFAULT_PORT = 8888
_PROTOCOL = click.Choice(list(PROTOCOLS))


@click.group("tcp-time")
def tcp_time() -> None:
    """Time over TCP (or UDP): daytime text (RFC 867) or binary seconds since 1900 (RFC 868).

    \b
    Examples:
      netkit tcp-time serve                      daytime on 127.0.0.1:8888
      netkit tcp-time serve --protocol time      what rdate -p -o 8888 reads
      netkit tcp-time get
      netkit tcp-time get --protocol time --udp
    """


@tcp_time.command("serve")
@server_options(DEFAULT_PORT)
@click.option(
    "--protocol",
    type=_PROTOCOL,
    default="daytime",
    show_default=True,
    help="daytime: a ctime line and CRLF (RFC 867); time: 4-byte seconds since 1900 (RFC 868).",
)
@click.option(
    "--udp", is_flag=True, help="Serve over UDP: every datagram (even empty) gets one reply."
)
@handle_failures
def serve(
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    count: int | None,
    quiet: bool,
    json_output: bool,
    no_color: bool,
    protocol: str,
    udp: bool,
) -> None:
    """Answer each connection with the time, then close it.

    Each connection (or datagram with --udp) is logged: the peer and what was
    sent.  --count N stops after N answers.
    """
    from netkit.services.tcp_time import TimeServer

    name, port = endpoint(host, port)
    out = renderer(json_output, no_color, quiet)
    service = TimeServer(
        out,
        host=name,
        port=port,
        version=version,
        protocol=protocol,
        udp=udp,
        count=count,
        quiet=quiet,
    )
    run_server(service, out)


@tcp_time.command("get")
@click.argument("target", nargs=-1, metavar="[HOST [PORT]]")
@client_options(DEFAULT_PORT)
@click.option(
    "--protocol",
    type=_PROTOCOL,
    default="daytime",
    show_default=True,
    help="daytime (RFC 867 text) or time (RFC 868 binary).",
)
@click.option("--udp", is_flag=True, help="Ask over UDP (sends one empty datagram).")
@handle_failures
def get(
    target: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    timeout: float,
    json_output: bool,
    no_color: bool,
    protocol: str,
    udp: bool,
) -> None:
    """Ask a time server for the time and print it.

    For --protocol time, also the offset from the local clock.  Daytime
    text carries no time zone: a ctime-style reply is read as local time
    (and the output says so).  The server is HOST and PORT (as with
    ncat or rdate; HOST may be HOST:PORT) or --host and --port.  With
    --udp, each address of a name is tried in turn until one answers.

    \b
    Examples:
      netkit tcp-time get
      netkit tcp-time get 127.0.0.1 8888
      netkit tcp-time get --protocol time --udp -H ::1
    """
    from netkit.clients.tcp_time import get_time

    name, port = positional_endpoint(target, host, port)
    out = renderer(json_output, no_color)
    from netkit.events import Notice

    def note(message: str) -> None:
        out(Notice("note", message))

    out(
        get_time(
            name,
            port,
            protocol=protocol,
            udp=udp,
            version=version,
            timeout=timeout,
            on_note=note,
        )
    )
    out.close()

"""netkit tcp-time: RFC 867 daytime / RFC 868 time server and client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from netkit.cli._common import (
    RATE,
    BoundedFloat,
    client_options,
    endpoint,
    handle_failures,
    hex_option,
    output_options,
    positional_endpoint,
    renderer,
    run_server,
    server_options,
)
from netkit.protocols.timeproto import PROTOCOLS

if TYPE_CHECKING:
    from netkit.services.sntp_server import SntpSettings

DEFAULT_PORT = 8888
# seconds between SNTP samples: zero allowed, at most a minute
PAUSE = BoundedFloat(0.0, 60.0, low_open=False, name="seconds", unit="seconds")
_PROTOCOL = click.Choice(list(PROTOCOLS))
_PROTOCOL_HELP = (
    "daytime: a ctime line and CRLF (RFC 867); time: 4-byte seconds since 1900 (RFC 868); "
    "sntp: the 48-byte NTPv4 packet (RFC 4330 / 5905, always UDP)."
)


@click.group("tcp-time")
def tcp_time() -> None:
    """Time over TCP (or UDP): daytime text (RFC 867), binary seconds since 1900 (RFC 868), SNTP.

    \b
    Examples:
      netkit tcp-time serve                      daytime on 127.0.0.1:8888
      netkit tcp-time serve --protocol time      what rdate -p -o 8888 reads
      netkit tcp-time serve --protocol sntp      an SNTP server, unsynchronised
      netkit tcp-time get
      netkit tcp-time get --protocol time --udp
      netkit tcp-time get --protocol sntp -H ntp.example.net:123 --samples 4
      netkit tcp-time encode 2036-02-07T06:28:16Z
    """


@tcp_time.command("serve")
@hex_option
@server_options(DEFAULT_PORT)
@click.option(
    "--protocol",
    type=_PROTOCOL,
    default="daytime",
    show_default=True,
    help=_PROTOCOL_HELP,
)
@click.option(
    "--udp",
    is_flag=True,
    help="Serve over UDP: every datagram (even empty) gets one reply, except from a "
    "port below 1024, the server's own address, or a peer answering its replies at once "
    "(another UDP server: a loop).",
)
@click.option(
    "--stratum",
    type=click.IntRange(1, 15),
    default=None,
    help="sntp: claim this stratum (and --refid) instead of saying the server is "
    "unsynchronised (leap indicator 3, stratum 16, the default).",
)
@click.option(
    "--refid",
    default=None,
    metavar="ID",
    help="sntp, with --stratum: the reference id, 1-4 ASCII letters (LOCL, GPS) or an IPv4 "
    "address.  [default: LOCL]",
)
@click.option(
    "--rate",
    type=RATE,
    default=None,
    metavar="N",
    help="sntp: answer at most N requests a second per source address; beyond it a "
    "kiss-o'-death RATE (at most one a second), then nothing.",
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
    stratum: int | None,
    refid: str | None,
    rate: float | None,
) -> None:
    """Answer each connection with the time, then close it.

    Each connection (or datagram with --udp) is logged: the peer and what was
    sent.  --count N stops after N answers.  Over UDP, what was not answered
    (and why) is warned about at most once a second and counted in the summary.

    --protocol sntp serves UDP only: it answers client requests (mode 3) of
    48 bytes or more with one 48-byte reply, never anything larger than the
    request, and never modes 6 or 7; datagrams from source ports below 1024
    other than 123 are not answered (loop guard).  Unless --stratum is given
    it says it is unsynchronised, which careful clients refuse.  Each reply is
    logged with its four timestamps.
    """
    from netkit.services.tcp_time import TimeServer

    name, port = endpoint(host, port)
    sntp: SntpSettings | None = None
    if protocol == "sntp":
        from netkit.protocols import ntp

        try:
            ref = None if refid is None else ntp.parse_refid(refid)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--refid") from None
        if ref is not None and stratum is None:
            raise click.UsageError(
                "--refid goes with --stratum (an unsynchronised server has none)"
            )
        from netkit.services.sntp_server import SntpSettings

        sntp = SntpSettings(stratum=stratum, refid=ref, rate=rate)
    elif stratum is not None or refid is not None or rate is not None:
        raise click.UsageError("--stratum, --refid and --rate go with --protocol sntp")
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
        sntp=sntp,
    )
    run_server(service, out)


@tcp_time.command("get")
@hex_option
@click.argument("target", nargs=-1, metavar="[HOST [PORT]]")
@client_options(DEFAULT_PORT)
@click.option(
    "--protocol",
    type=_PROTOCOL,
    default="daytime",
    show_default=True,
    help="daytime (RFC 867 text), time (RFC 868 binary) or sntp (RFC 4330, over UDP).",
)
@click.option("--udp", is_flag=True, help="Ask over UDP (sends one empty datagram).")
@click.option(
    "--samples",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    metavar="N",
    help="sntp: ask N times and keep the answer with the lowest delay.",
)
@click.option(
    "--pause",
    type=PAUSE,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="sntp: the wait between samples.",
)
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
    samples: int,
    pause: float,
) -> None:
    """Ask a time server for the time and print it, with the offset from the local clock.

    Daytime and time count whole seconds, so their offset is whole seconds
    with the bound (±) the exchange allows.  Daytime text carries no time
    zone: a ctime-style reply is read as local time (and the output says so).
    A reply that looks like the other protocol is named as such (exit 1).

    sntp sends an NTPv4 request whose transmit timestamp is a random nonce and
    accepts only a reply from the server's address that echoes it, mode 4,
    version 3 or 4, stratum 1-15, leap indicator not 3; anything else is
    refused with the reason (exit 1).  Kiss-o'-death DENY and RSTR stop it,
    RATE makes it wait longer before asking again.  Shown: the server's time,
    the offset ± the root distance, stratum, reference id and leap indicator.

    The server is HOST and PORT (as with ncat or rdate; HOST may be
    HOST:PORT) or --host and --port.  With --udp, each address of a name is
    tried in turn until one answers.

    \b
    Examples:
      netkit tcp-time get
      netkit tcp-time get 127.0.0.1 8888
      netkit tcp-time get --protocol time --udp -H ::1
      netkit tcp-time get --protocol sntp --samples 4 127.0.0.1 12300
    """
    name, port = positional_endpoint(target, host, port)
    out = renderer(json_output, no_color)
    from netkit.events import Notice

    if protocol == "sntp":
        from netkit.clients.sntp import get_sntp

        got = get_sntp(
            name,
            port,
            version=version,
            timeout=timeout,
            samples=samples,
            pause=pause,
            notice=lambda message: out(Notice("warning", message)),
        )
        out(got)
    else:
        from netkit.clients.tcp_time import get_time

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


@tcp_time.command("encode")
@click.argument("when", required=False, metavar="[WHEN]")
@output_options
@handle_failures
def encode(when: str | None, json_output: bool, no_color: bool) -> None:
    """Show one instant in every encoding of the time protocols, with their rollover dates.

    WHEN is now (the default), an ISO 8601 time (without a zone: UTC) or a
    Unix time.  Shown: Unix time, 32-bit time_t (ends 2038-01-19T03:14:08Z),
    RFC 867 text, RFC 868 seconds since 1900 and its bytes (wraps
    2036-02-07T06:28:16Z), the NTP 64-bit timestamp (seconds, fraction,
    bytes, era; era 1 begins 2036-02-07T06:28:16Z).

    \b
    Examples:
      netkit tcp-time encode
      netkit tcp-time encode 2036-02-07T06:28:16Z
      netkit tcp-time encode 2147483648 --json
    """
    import time

    from netkit.events.sntp import TimeEncoded
    from netkit.protocols import timecodes

    try:
        unix = time.time() if when is None else timecodes.parse_when(when)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="WHEN") from None
    out = renderer(json_output, no_color)
    out(TimeEncoded(**timecodes.encode(unix)))
    out.close()

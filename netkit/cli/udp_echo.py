"""netkit udp-echo: the lecture's UDP upper-casing server (or RFC 862 echo) and its client."""

from __future__ import annotations

import click

from netkit.cli._common import (
    RATE,
    client_options,
    endpoint,
    handle_failures,
    hex_option,
    refuse_host_port_as_data,
    renderer,
    run_server,
    server_options,
)

DEFAULT_PORT = 11111


@click.group("udp-echo")
def udp_echo() -> None:
    """UDP echo server and client (lecture exercise 1; RFC 862 with --plain).

    \b
    Examples:
      netkit udp-echo serve               upper-case replies on 127.0.0.1:11111
      netkit udp-echo send hello world    prints HELLO and WORLD
      printf 'a\\nb\\n' | netkit udp-echo send -
    """


@udp_echo.command("serve")
@hex_option
@server_options(DEFAULT_PORT)
@click.option(
    "--upper/--plain",
    default=True,
    show_default=True,
    help="Reply upper-cased (ASCII a-z only, like the lecture's server) or unchanged (RFC 862).",
)
@click.option(
    "--rate",
    type=RATE,
    default=None,
    metavar="N",
    help="Answer at most N datagrams a second per source address; the rest are dropped "
    "and counted.",
)
def serve(
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    count: int | None,
    quiet: bool,
    json_output: bool,
    no_color: bool,
    upper: bool,
    rate: float | None,
) -> None:
    """Answer each UDP datagram with the same bytes, upper-cased by default.

    Each datagram is logged (source, size, escaped payload) on stderr, or as
    a "datagram" JSON line with --json; --quiet turns that off for speed.
    A datagram from a source port below 1024 or from the server's own
    address is never answered (it would start a reply loop), nor is a peer
    that keeps sending back our own replies at once (another UDP server:
    64 in a row, each within 50 ms); what was not answered, and why, is
    counted in the summary.  Every UDP server of netkit has these guards.

    \b
    Examples:
      netkit udp-echo serve --port 0 --json
      netkit udp-echo serve --plain --host ::1 --rate 100
    """
    from netkit.services.udp_echo import UdpEchoServer

    name, number = endpoint(host, port)
    out = renderer(json_output, no_color, quiet)
    service = UdpEchoServer(
        out,
        host=name,
        port=number,
        version=version,
        count=count,
        upper=upper,
        quiet=quiet,
        rate=rate,
    )
    run_server(service, out)


@udp_echo.command("send")
@hex_option
@click.argument("messages", nargs=-1, required=True, metavar="MESSAGE...")
@client_options(DEFAULT_PORT)
@click.option(
    "-r",
    "--retries",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Send a message again this many times when no reply comes within --timeout.",
)
@handle_failures
def send(
    messages: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    timeout: float,
    json_output: bool,
    no_color: bool,
    retries: int,
) -> None:
    """Send each MESSAGE as one datagram and print each reply on stdout.

    On a terminal, stderr shows each reply's size, source and round-trip
    time (--json: rtt_ms); each retry is announced as it starts (no reply
    ..., try 2/4).

    A MESSAGE of - reads messages from stdin, one per line.  Exits 1 with
    one line when a reply does not come within --timeout (after --retries),
    or at once when the host says nothing listens on that port (ICMP port
    unreachable).  Datagrams from any other address than the server's are
    ignored.  A name with several addresses (localhost: ::1 and 127.0.0.1)
    has each tried in turn until one answers; stderr says which did.

    The server is given by --host and --port: unlike ncat, HOST and PORT
    are not arguments here (every argument is a message), and arguments
    that look like them (send 127.0.0.1 42001 hi) are refused with a hint
    rather than sent; give -H or -p to send such text anyway.

    \b
    Examples:
      netkit udp-echo send hello
      netkit udp-echo send -H 127.0.0.1 -p 42001 hello
      netkit udp-echo send --host ::1 --port 7777 --timeout 0.5 --retries 2 ping
      seq 3 | netkit udp-echo send -
    """
    import sys
    from collections.abc import Iterator

    from netkit.clients.udp_echo import encode_arg, read_lines, send_messages

    refuse_host_port_as_data(messages, "a message")
    name, number = endpoint(host, port, allow_zero=False)

    def payloads() -> Iterator[bytes]:
        for m in messages:
            if m == "-":
                yield from read_lines(sys.stdin.buffer)
            else:
                yield encode_arg(m)

    out = renderer(json_output, no_color)
    try:
        send_messages(
            out,
            payloads(),
            host=name,
            port=number,
            version=version,
            timeout=timeout,
            retries=retries,
        )
    finally:
        out.close()

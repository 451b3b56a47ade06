"""netkit anatomy: one real exchange, captured and shown layer by layer."""

from __future__ import annotations

import click

from netkit.cli import exit_interrupted
from netkit.cli._common import handle_failures, output_options, renderer

_EXCHANGES = ("udp", "tcp", "http", "dns", "all")


@click.command("anatomy")
@click.argument("exchange", type=click.Choice(_EXCHANGES), default="all", required=False)
@click.option(
    "--netns",
    is_flag=True,
    help="Run the exchange between two network namespaces of its own joined by a veth pair "
    "(192.0.2.1 and 192.0.2.2): real MAC addresses and a real ARP exchange.  Root only; "
    "both namespaces are removed on exit.",
)
@click.option(
    "--no-capture",
    is_flag=True,
    help="Capture nothing (no privilege needed): show what the sockets themselves tell "
    "(addresses, ports, TCP_INFO).",
)
@click.option(
    "--pcap",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Also write the frames shown to FILE as pcapng (Wireshark, tshark).",
)
@click.option(
    "-6",
    "ipv6",
    is_flag=True,
    help="Over IPv6 on ::1 instead of 127.0.0.1 (not with --netns).",
)
@click.option(
    "--fields",
    "show_fields",
    is_flag=True,
    help="Under each diagram, list every field with tshark's name for it, its value and its "
    "byte offsets in the frame.",
)
@output_options
@handle_failures
def anatomy(
    exchange: str,
    netns: bool,
    no_capture: bool,
    pcap: str | None,
    ipv6: bool,
    show_fields: bool,
    json_output: bool,
    no_color: bool,
) -> None:
    """Run one real exchange on loopback and show every frame, layer by layer.

    netkit's own services start on ephemeral ports, the exchange runs, and
    its frames are captured with an AF_PACKET socket (root or CAP_NET_RAW)
    filtered to the exchange's ports.  Each frame is shown from the outside
    in (Ethernet, ARP, IPv4, TCP or UDP, DNS, HTTP) as an RFC-style field
    diagram beside a hexdump, then the exchange as a sequence diagram and
    the lecture's steps mapped to frames.  Loopback's artefacts are
    explained, not shown as errors: each frame passes the tap twice (the
    outgoing copy is dropped and counted), MAC addresses are zero, there is
    no ARP, and TCP/UDP checksums are left to the NIC (checksum offload).

    \b
    EXCHANGE:
      udp   one datagram to udp-echo and its upper-cased reply
      tcp   one upper-server session: handshake, a line each way, the close
      http  GET / HTTP/1.1 to a small HTTP server, the response, the close
      dns   a DNS query to a small responder, then a connection to the address
      all   dns, then http to the address it gave (default)

    \b
    --json writes one "frame" event per frame, each field named as tshark
    names it (ip.ttl, tcp.seq_raw, dns.qry.name ...), then a "summary".
    Without the privilege: exit 1 with what is needed; --no-capture works
    for anyone.

    \b
    Examples:
      sudo netkit anatomy http
      sudo netkit anatomy --netns udp
      sudo netkit anatomy tcp --fields
      sudo netkit anatomy -6 http
      sudo netkit anatomy tcp --pcap tcp.pcapng --json
      netkit anatomy --no-capture tcp
    """
    import os
    import signal

    from netkit.services.anatomy import run_anatomy

    if no_capture and (netns or pcap):
        raise click.UsageError("--no-capture goes with neither --netns nor --pcap")
    if ipv6 and netns:
        raise click.UsageError("-6 runs on loopback; --netns uses IPv4 (192.0.2.0/24)")
    out = renderer(json_output, no_color)
    if show_fields:
        out.show_fields = True  # type: ignore[attr-defined]  # read by netkit.render.anatomy

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # the namespaces are removed on the way out

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        run_anatomy(
            out,
            exchange,
            netns=netns,
            capture=not no_capture,
            pcap=os.fspath(pcap) if pcap else None,
            version=6 if ipv6 else None,
        )
    except KeyboardInterrupt:
        exit_interrupted("interrupted; everything it started is stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
    out.close()

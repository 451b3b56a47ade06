"""netkit creosote: the lecture's "Mr. Creosote" UDP remote debugger (listen and spew)."""

from __future__ import annotations

import click

from netkit.cli._common import (
    TIMEOUT,
    HostType,
    PortType,
    endpoint,
    family_options,
    handle_failures,
    output_options,
    renderer,
    run_server,
    server_options,
)

DEFAULT_PORT = 7739
HEADER_LEN = 32  # netkit.protocols.creosote.HEADER_LEN (not imported: keep startup light)
MAX_DATAGRAM = 65_507


@click.group("creosote")
def creosote() -> None:
    """Mr. Creosote: send debug messages over UDP and collect them.

    \b
    Examples:
      netkit creosote listen --logfile debug.log
      netkit creosote spew "reached step 3"
      make 2>&1 | netkit creosote spew -

    \b
    From Python, send log records to a listener:
      from netkit.creosote import CreosoteHandler
      logging.getLogger().addHandler(CreosoteHandler("127.0.0.1", 7739))
    """


@creosote.command("listen")
@server_options(DEFAULT_PORT)
@click.option(
    "--logfile",
    type=click.Path(),  # no checks here (the listener refuses what it must); completes files
    metavar="PATH",
    default=None,
    help="Also append one escaped line per message to PATH (a regular file; a symlink, "
    "FIFO or directory is refused). Reopened when PATH is moved away (log rotation) or on "
    "SIGHUP.",
)
@click.option(
    "--incomplete-after",
    type=TIMEOUT,
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Report a chunked message as incomplete when no chunk of it came for this long.",
)
def listen(
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    count: int | None,
    quiet: bool,
    json_output: bool,
    no_color: bool,
    logfile: str | None,
    incomplete_after: float,
) -> None:
    """Print each message that arrives: time, source, escaped text.

    Accepts plain datagrams (anything: nc, the lecture's spew), chunked
    messages from "netkit creosote spew" (put back together; a message
    whose chunks did not all arrive is reported as incomplete), and syslog
    datagrams (RFC 3164 / RFC 5424, e.g. from logger -n), shown with
    facility, severity, host and app.  --count counts whole messages.

    With --logfile, a rotated log (mv debug.log debug.log.1) is noticed
    within half a second and a new file opened at PATH; SIGHUP reopens it at
    once.  A failed write (disk full) is reported once: messages are still
    shown, and the command exits 1 at the end.  The summary counts the
    datagrams the kernel dropped because the listener fell behind
    (kernel_drops).

    \b
    Examples:
      netkit creosote listen
      netkit creosote listen --port 0 --json --logfile /tmp/debug.log
      logger -n 127.0.0.1 -P 7739 -d "hello from syslog"
    """
    from netkit.services.creosote import CreosoteListener

    name, number = endpoint(host, port)
    out = renderer(json_output, no_color, quiet)
    service = CreosoteListener(
        out,
        host=name,
        port=number,
        version=version,
        count=count,
        logfile=logfile,
        quiet=quiet,
        incomplete_timeout=incomplete_after,
    )
    if logfile is None:
        run_server(service, out)
        return
    import signal

    # SIGHUP: reopen the log file (log rotation), instead of ending the listener
    previous = signal.signal(signal.SIGHUP, lambda _sig, _frame: service.reopen_log())
    try:
        run_server(service, out)
    finally:
        signal.signal(signal.SIGHUP, previous)


@creosote.command("spew")
@click.argument("message", nargs=-1, required=True)
@click.option(
    "-H",
    "--host",
    type=HostType(),
    default="127.0.0.1",
    show_default=True,
    help="Listener address or name (HOST, HOST:PORT, [V6]:PORT).",
)
@click.option(
    "-p",
    "--port",
    type=PortType(allow_zero=False),
    default=DEFAULT_PORT,
    show_default=True,
    help="Listener port.",
)
@family_options
@click.option(
    "-s",
    "--chunk-size",
    type=click.IntRange(HEADER_LEN + 1, MAX_DATAGRAM),
    default=1024,
    show_default=True,
    help=f"Largest datagram to send, its {HEADER_LEN}-byte chunk header included.",
)
@click.option(
    "-t",
    "--timeout",
    type=TIMEOUT,
    default=0.25,
    show_default=True,
    help="Seconds to wait after the last chunk for the host to say nothing listens (ICMP).",
)
@output_options
@handle_failures
def spew(
    message: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    chunk_size: int,
    timeout: float,
    json_output: bool,
    no_color: bool,
) -> None:
    """Send MESSAGE (the words joined by spaces) to a listener as UDP datagrams.

    A message longer than --chunk-size is cut into chunks, only between
    UTF-8 characters; a plain UDP listener still reads text.  A MESSAGE of -
    sends all of stdin, up to EOF, as one message.  Prints on stderr how
    much was sent; exits 1 if the host answered that nothing listens there.

    \b
    Examples:
      netkit creosote spew "x = 42 at step 3"
      make 2>&1 | netkit creosote spew -
      netkit creosote spew --host ::1 --chunk-size 512 - < big.log
    """
    import os
    import sys

    from netkit.clients.creosote import spew as send

    name, number = endpoint(host, port, allow_zero=False)
    if message == ("-",):
        data = sys.stdin.buffer.read()
    elif "-" in message:
        raise click.UsageError("- (read stdin) must be the only MESSAGE")
    else:
        data = os.fsencode(" ".join(message))
    out = renderer(json_output, no_color)
    try:
        result = send(
            data,
            host=name,
            port=number,
            version=version,
            chunk_size=chunk_size,
            wait=timeout,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--chunk-size'") from None
    out(result)
    out.close()

"""netkit creosote: the lecture's "Mr. Creosote" UDP remote debugger (listen and spew)."""

from __future__ import annotations

from typing import Any

import click

from netkit.cli._common import (
    TIMEOUT,
    HostType,
    PortType,
    endpoint,
    family_options,
    handle_failures,
    hex_option,
    hex_requested,
    output_options,
    renderer,
    run_server,
    server_options,
)
from netkit.protocols import creosote_chunks as wire
from netkit.protocols.creosote_chunks import DEFAULT_PORT, HEADER_LEN, MAX_DATAGRAM


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
@hex_option
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
@click.option("--udp", "use_udp", is_flag=True, help="Listen on UDP (the default).")
@click.option(
    "--tcp",
    "use_tcp",
    is_flag=True,
    help="Listen on TCP (SocketHandler, syslog over TCP, JSON lines); with --udp both, on the "
    "same port number.",
)
@click.option(
    "--max-clients",
    type=click.IntRange(1, 100_000),
    default=64,
    show_default=True,
    help="TCP connections at once; more are closed at once and counted.",
)
@click.option(
    "--max-record",
    type=click.IntRange(64, 16 << 20),
    default=1 << 20,
    show_default=True,
    metavar="BYTES",
    help="Longest TCP record (a line or a frame); a longer one is refused and its connection "
    "closed.",
)
@click.option(
    "--idle-timeout",
    type=TIMEOUT,
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Close a TCP connection that sends nothing for this long.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Show each plain datagram on its own: do not join the lecture's spew() pieces.",
)
@click.option(
    "--level",
    "min_level",
    metavar="LEVEL",
    default=None,
    help="Show records at or above LEVEL: debug, info, notice, warning, error, critical, "
    "alert, emergency (syslog severities and Python levels on one scale; a record without "
    "a level counts as info).",
)
@click.option("--grep", metavar="REGEX", default=None, help="Show records whose message matches.")
@click.option(
    "--logger",
    metavar="NAME",
    default=None,
    help="Show records of logger NAME and its children (app matches app and app.db).",
)
@click.option(
    "--source",
    metavar="ADDRESS",
    default=None,
    help="Show records from this sender address only (127.0.0.1, ::1).",
)
@click.option(
    "--filter-log",
    is_flag=True,
    help="Apply the filters to --logfile and --forward too (by default they keep everything).",
)
@click.option(
    "--forward",
    "forward_urls",
    metavar="URL",
    multiple=True,
    help="Also send each record to a syslog pipeline: syslog+udp://HOST:PORT, "
    "syslog+tcp://HOST:PORT (RFC 5424, octet counting; ?framing=lf for newline framing) or "
    "relp://HOST:PORT (RELP, rsyslog's imrelp: a record counts as forwarded when the "
    "receiver acknowledges it, and none is lost uncounted; delivery is at-least-once, so a "
    "record whose acknowledgement was lost with the connection may arrive twice). "
    "?queue=N records waiting at most. Repeatable.",
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
    raw: bool,
    min_level: str | None,
    grep: str | None,
    logger: str | None,
    source: str | None,
    filter_log: bool,
    forward_urls: tuple[str, ...],
    use_udp: bool,
    use_tcp: bool,
    max_clients: int,
    max_record: int,
    idle_timeout: float,
) -> None:
    """Print each message that arrives: time, source, level, escaped text.

    Every dialect Python programs send is understood, per datagram: plain
    text (nc; the lecture's spew() pieces joined: consecutive text
    datagrams from one address and port, less than 0.2 s apart, all but
    the last of one BUFSIZE, a power of two from 1024 to 65536; --raw
    shows each), netkit's chunked messages (a message
    whose chunks did not all arrive is reported as incomplete), JSON lines
    ({"level": ..., "logger": ..., "message": ...}), syslog (RFC 3164 /
    RFC 5424, e.g. logger -n, SysLogHandler; a trailing NUL stripped),
    the stdlib DatagramHandler's pickled records (decoded by an unpickler
    that refuses every global: never executed; anything but a plain record
    is refused and reported), and GELF (plain, zlib, gzip, chunked).  A
    multi-line message (a traceback) is shown as its lines, indented
    beneath the first.  --count counts whole messages.

    --tcp takes the same over TCP, the framing detected per connection:
    SocketHandler's length-prefixed pickles, syslog with RFC 6587 octet
    counting (logger -T --octet-count) or LF / NUL ends (SysLogHandler with
    socktype=SOCK_STREAM), JSON lines, plain lines.

    Filters (--level, --grep, --logger, --source) choose what is shown;
    the log file and --forward keep every record unless --filter-log.

    With --logfile, a rotated log (mv debug.log debug.log.1) is noticed
    within half a second and a new file opened at PATH; SIGHUP reopens it at
    once.  A failed write (disk full) is reported once: messages are still
    shown, and the command exits 1 at the end.  The summary counts the
    datagrams the kernel dropped because the listener fell behind
    (kernel_drops).

    \b
    Examples:
      netkit creosote listen
      netkit creosote listen --udp --tcp --level warning --grep 'timeout|refused'
      netkit creosote listen --forward syslog+tcp://127.0.0.1:514
      netkit creosote listen --forward relp://127.0.0.1:2514
      netkit creosote listen --port 0 --json --logfile /tmp/debug.log
      logger -n 127.0.0.1 -P 7739 -d "hello from syslog"
    """
    from netkit.services.creosote import CreosoteListener

    name, number = endpoint(host, port)
    record_filter = _record_filter(min_level, grep, logger, source)
    forwarders = _forwarders(forward_urls)
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
        raw=raw,
        record_filter=record_filter,
        filter_log=filter_log,
        forwarders=forwarders,
        udp=use_udp or not use_tcp,
        tcp=use_tcp,
        max_clients=max_clients,
        max_record=max_record,
        idle_timeout=idle_timeout,
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


def _record_filter(
    min_level: str | None, grep: str | None, logger: str | None, source: str | None
) -> Any:
    import re

    from netkit.protocols.records import RecordFilter, parse_level

    try:
        level = parse_level(min_level) if min_level is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--level'") from None
    try:
        pattern = re.compile(grep) if grep is not None else None
    except re.error as exc:
        raise click.BadParameter(
            f"{grep!r} is not a regular expression: {exc}", param_hint="'--grep'"
        ) from None
    if source is not None:
        source = source.strip("[]")  # [::1] as the sender's address is written ::1
    return RecordFilter(level=level, grep=pattern, logger=logger, source=source)


def _forwarders(urls: tuple[str, ...]) -> list[Any]:
    from netkit.services.forward import Forwarder, parse_target

    out = []
    for url in urls:
        try:
            out.append(Forwarder(parse_target(url)))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--forward'") from None
    return out


STDIN_BLOCK = 1 << 20  # stdin without --lines: sent in messages of at most this many bytes
MAX_LINE = 64 << 10  # --lines: a longer line is sent in pieces of this size


@creosote.command("spew")
@hex_option
@click.argument("message", nargs=-1)
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
    default=None,
    help="Seconds to wait after the last chunk for another host to say nothing listens "
    "(ICMP) [default: 0.25; an address of this host refuses during the send, so no wait]; "
    "it also bounds the name lookup (at least 1 s).",
)
@click.option(
    "--lines",
    is_flag=True,
    help="Reading stdin: send each line as a message of its own as soon as it arrives "
    "(tail -f app.log | netkit creosote spew --lines).",
)
@click.option(
    "--level",
    "record_level",
    metavar="LEVEL",
    default=None,
    help="Send records (JSON lines) with this level: debug, info, warning, error, ...",
)
@click.option(
    "--logger",
    "record_logger",
    metavar="NAME",
    default=None,
    help="Send records (JSON lines) with this logger name.",
)
@output_options
@handle_failures
def spew(
    message: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    chunk_size: int,
    timeout: float | None,
    lines: bool,
    record_level: str | None,
    record_logger: str | None,
    json_output: bool,
    no_color: bool,
) -> None:
    """Send MESSAGE (the words joined by spaces) to a listener as UDP datagrams.

    A message longer than --chunk-size is cut into chunks, only between
    UTF-8 characters; a plain UDP listener still reads text.  With no
    MESSAGE, or a MESSAGE of -, stdin is read: as one message up to EOF
    (in messages of at most 1 MiB when longer, so memory stays bounded),
    or with --lines one message per line as each line arrives.  --level
    and --logger send a JSON record ({"level", "logger", "message"}) that
    the listener filters and colours by.  Prints on stderr how much was
    sent; exits 1 if the host answered that nothing listens there.

    \b
    Examples:
      netkit creosote spew "x = 42 at step 3"
      make 2>&1 | netkit creosote spew
      tail -f app.log | netkit creosote spew --lines --logger app
      netkit creosote spew --level error --logger db "connection lost"
      netkit creosote spew --host ::1 --chunk-size 512 - < big.log
    """
    import os
    import sys

    from netkit.clients.creosote import Spewer

    name, number = endpoint(host, port, allow_zero=False)
    if lines and message not in ((), ("-",)):
        raise click.UsageError("--lines reads stdin: give no MESSAGE (or -)")
    if "-" in message and message != ("-",):
        raise click.UsageError("- (read stdin) must be the only MESSAGE")
    level = None
    if record_level is not None:
        from netkit.protocols.records import parse_level

        try:
            level = parse_level(record_level)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--level'") from None
    as_record = level is not None or record_logger is not None

    def encode(data: bytes) -> bytes:
        if not as_record:
            return data
        import json

        obj: dict[str, Any] = {"message": data.decode("utf-8", "surrogateescape")}
        if level is not None:
            obj["level"] = level
        if record_logger is not None:
            obj["logger"] = record_logger
        return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogateescape")

    out = renderer(json_output, no_color)
    stdin = message in ((), ("-",))
    if not stdin:
        data = os.fsencode(" ".join(message))
        _check_chunk_size(encode(data), chunk_size)
    elif sys.stdin is None:
        raise click.UsageError("stdin is closed: give a MESSAGE, or pipe the text in")
    on_datagram = None
    if hex_requested() and not json_output:
        from netkit.events.creosote_spew import DatagramSent

        def on_datagram(datagram: bytes) -> None:
            out(DatagramSent(peer=sender.peer, size=len(datagram), data=datagram))

    from netkit.clients.creosote import DEFAULT_WAIT
    from netkit.events import Notice

    def note(message: str) -> None:
        out(Notice("note", message))

    wait = DEFAULT_WAIT if timeout is None else timeout
    sender = Spewer(
        name,
        number,
        version=version,
        chunk_size=chunk_size,
        strict=not lines,
        wait=wait,
        lookup_timeout=max(wait, 1.0),
        on_datagram=on_datagram,
        on_note=note,
    )
    try:
        if not stdin:
            sender.send(encode(data))
        elif lines:
            for line in iter(lambda: sys.stdin.buffer.readline(MAX_LINE), b""):
                sender.send(encode(line.removesuffix(b"\n")))
        else:
            while block := sys.stdin.buffer.read(STDIN_BLOCK):
                sender.send(encode(block))
    except ValueError as exc:
        sender.close()
        raise click.BadParameter(str(exc), param_hint="'--chunk-size'") from None
    except BaseException:
        sender.close()
        raise
    result = sender.finish()
    out(result)
    out.close()
    if result.refused:
        from netkit.net import NetError

        raise NetError(
            f"{result.refused} of {result.messages} messages were refused: nothing listens on "
            f"{sender.where} (ICMP port unreachable)"
        )


def _check_chunk_size(data: bytes, chunk_size: int) -> None:
    try:
        wire.split(data, chunk_size, "00000000")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--chunk-size'") from None

"""netkit upper-server: the line upper-caser (server in four modes, send, chat)."""

from __future__ import annotations

import sys

import click

from netkit.cli._common import (
    SECONDS_OR_ZERO,
    TIMEOUT,
    client_options,
    endpoint,
    handle_failures,
    hex_option,
    positional_endpoint,
    refuse_host_port_as_data,
    renderer,
    run_server,
    server_options,
)
from netkit.services.modes import MODES

DEFAULT_PORT = 2345


@click.group("upper-server")
def upper_server() -> None:
    """Line upper-caser over TCP or UDP: each line comes back in capitals.

    An empty line (or EOF) ends a session.  The server runs in one of four
    modes: three that behave like the lecture's socketserver variants, and an
    event loop; --impl socketserver runs the standard library's classes.

    \b
    Examples:
      netkit upper-server serve --mode async
      netkit upper-server send hello world
      printf 'a\\nb\\n' | netkit upper-server send -
      netkit upper-server chat
    """


@upper_server.command("serve")
@hex_option
@server_options(DEFAULT_PORT)
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default=None,
    help="sync: one client at a time; thread / fork: one thread / process per "
    "connection; async: one event loop.  [default: thread]",
)
@click.option(
    "--impl",
    type=click.Choice(["netkit", "socketserver"]),
    default="netkit",
    show_default=True,
    help="socketserver: run the standard library's own TCPServer / ThreadingTCPServer / "
    "ForkingTCPServer (--mode sync / thread / fork) with the lecture's handler, to watch "
    "what netkit's modes add (no idle or line timeout, no line cap, no client cap; sync "
    "leaves a second client in the kernel's backlog).",
)
@click.option("--udp", is_flag=True, help="Serve UDP: each datagram comes back upper-cased.")
@click.option(
    "--plain",
    is_flag=True,
    help="RFC 862 echo (inetd's internal echo service): every byte comes back unchanged "
    "at once, empty lines included; only EOF ends a session.",
)
@click.option(
    "--max-line",
    type=click.IntRange(min=1),
    default=65_536,
    show_default=True,
    help="Longest line in bytes; a longer one gets an error reply and the connection closes.",
)
@click.option(
    "--idle-timeout",
    type=TIMEOUT,
    default=300.0,
    show_default=True,
    help="Close a connection that sends nothing (or reads none of its replies) "
    "for this many seconds.",
)
@click.option(
    "--line-timeout",
    type=TIMEOUT,
    default=30.0,
    show_default=True,
    help="Close a connection whose line, once begun, is not complete within this many "
    "seconds (a client trickling bytes cannot hold a slot).",
)
@click.option(
    "--max-clients",
    type=click.IntRange(min=1),
    default=None,
    help="Connections served at once; more get a 'busy' reply.  [default: 256; async: "
    "10000 or what the open-file limit allows; sync: clients waiting]",
)
@click.option(
    "--grace",
    type=SECONDS_OR_ZERO,
    default=1.0,
    show_default=True,
    help="On SIGINT/SIGTERM, seconds busy connections get to finish (idle ones close at once).",
)
@click.option(
    "--prefork",
    type=click.IntRange(min=1),
    default=None,
    help="fork mode: start N worker processes that each accept and serve (one connection "
    "at a time each) instead of a fork per connection.",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="async mode: event loop (auto = uvloop when installed).",
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
    mode: str | None,
    udp: bool,
    plain: bool,
    max_line: int,
    idle_timeout: float,
    line_timeout: float,
    max_clients: int | None,
    grace: float,
    prefork: int | None,
    loop_name: str,
    impl: str,
) -> None:
    """Send back each line upper-cased, with the same line ending.

    Logs each connection, line and disconnect (--quiet: only the summary).
    --count N stops after N connections (N datagrams with --udp).  Over UDP,
    like udp-echo, a datagram from a port below 1024, from the server's own
    address or from a peer answering its replies at once (another UDP server)
    is not answered; those are counted in the summary.

    --impl socketserver runs the standard library's socketserver classes
    instead of netkit's modes, with the same log and the same stop; the
    options those classes have no equivalent for are refused.
    """
    import os

    if impl == "socketserver":
        _refuse_for_socketserver(mode, udp)

    if udp and mode is not None:
        raise click.UsageError("--mode applies to TCP; --udp serves every datagram in one loop")
    mode = mode or "thread"
    if mode == "fork" and not hasattr(os, "fork"):
        raise click.UsageError("--mode fork needs fork(), which this platform does not have")
    if prefork and mode != "fork":
        raise click.UsageError("--prefork goes with --mode fork")
    if loop_name != "auto" and mode != "async":
        raise click.UsageError("--loop goes with --mode async")
    if loop_name == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise click.UsageError(
                "--loop uvloop: uvloop is not installed (pip install 'netkit-cli[fast]')"
            ) from None
    name, port = endpoint(host, port)
    out = renderer(json_output, no_color, quiet)
    if impl == "socketserver":
        from netkit.services.upper_socketserver import SocketserverUpper

        lecture = SocketserverUpper(
            out,
            host=name,
            port=port,
            version=version,
            mode=mode,
            count=count,
            quiet=quiet,
            grace=grace,
        )
        run_server(lecture, out, grace=grace)
        return
    from netkit.services.upper import UpperServer

    service = UpperServer(
        out,
        host=name,
        port=port,
        version=version,
        mode=mode,
        udp=udp,
        count=count,
        quiet=quiet,
        max_line=max_line,
        idle_timeout=idle_timeout,
        line_timeout=line_timeout,
        max_clients=max_clients,
        grace=grace,
        prefork=prefork or 0,
        loop=loop_name,
        plain=plain,
    )
    run_server(service, out, grace=grace)


#: what the socketserver classes cannot do, by option: why, in a few words
_NOT_IN_SOCKETSERVER = {
    "udp": "netkit serves UDP itself, behind the reply guards of every netkit UDP server",
    "plain": "the lecture's handler upper-cases",
    "max_line": "readline() has no line cap",
    "idle_timeout": "a StreamRequestHandler waits for a line for good",
    "line_timeout": "a StreamRequestHandler waits for a line for good",
    "max_clients": "the classes start a thread or process per client however many",
    "prefork": "ForkingTCPServer forks per connection",
    "loop_name": "--loop goes with --mode async",
}


def _refuse_for_socketserver(mode: str | None, udp: bool) -> None:
    """--impl socketserver: one usage error naming an option it cannot honour."""
    from click.core import ParameterSource

    from netkit.events.upper_server import SOCKETSERVER_CLASSES

    ctx = click.get_current_context()
    if mode is not None and mode not in SOCKETSERVER_CLASSES:
        raise click.UsageError(
            f"--impl socketserver runs --mode sync, thread or fork (TCPServer, "
            f"ThreadingTCPServer, ForkingTCPServer); --mode {mode} is netkit's only"
        )
    for name, why in _NOT_IN_SOCKETSERVER.items():
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            option = "--loop" if name == "loop_name" else "--" + name.replace("_", "-")
            raise click.UsageError(f"{option} does not go with --impl socketserver: {why}")


@upper_server.command("send")
@hex_option
@click.argument("lines", nargs=-1, required=True, metavar="LINE...")
@client_options(DEFAULT_PORT)
@click.option("--udp", is_flag=True, help="Send each line as one datagram.")
@handle_failures
def send(
    lines: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    timeout: float,
    json_output: bool,
    no_color: bool,
    udp: bool,
) -> None:
    """Send each LINE, print each reply, then send the empty line and close.

    A server past its --max-clients answers with its busy line instead:
    that is exit 1, with the line.

    LINE '-' reads lines from standard input (up to the first empty line).
    With --udp, each address of a name is tried in turn until one answers.
    The server is given by --host and --port (every argument is a line);
    arguments that look like ncat's HOST PORT (send 127.0.0.1 2345 hi) are
    refused with a hint rather than sent; give -H or -p to send them anyway.

    \b
    Examples:
      netkit upper-server send hello world
      netkit upper-server send -H ::1 -p 2345 hello
    """
    from netkit.clients.upper import LineClient

    refuse_host_port_as_data(lines, "a line")
    payloads = _lines(lines)
    name, port = endpoint(host, port, allow_zero=False)
    out = renderer(json_output, no_color)
    from netkit.events import Notice

    def note(message: str) -> None:
        out(Notice("note", message))

    with LineClient(name, port, version=version, timeout=timeout, udp=udp, on_note=note) as client:
        for line in payloads:
            out(client.exchange(line))
        client.finish()
    out.close()


def _lines(args: tuple[str, ...]) -> list[bytes]:
    out: list[bytes] = []
    for arg in args:
        if arg == "-":
            for raw in sys.stdin.buffer:
                line = raw.rstrip(b"\r\n")
                if not line:
                    break  # an empty line ends the session
                out.append(line)
            continue
        if "\n" in arg or "\r" in arg:
            raise click.BadParameter("a LINE cannot contain a line break", param_hint="'LINE'")
        if not arg:
            raise click.BadParameter(
                "an empty LINE would end the session; send ends it by itself",
                param_hint="'LINE'",
            )
        out.append(arg.encode("utf-8", "surrogateescape"))
    return out


@upper_server.command("chat")
@hex_option
@click.argument("target", nargs=-1, metavar="[HOST [PORT]]")
@client_options(DEFAULT_PORT)
@handle_failures
def chat(
    target: tuple[str, ...],
    host: tuple[str, int | None],
    port: int,
    version: int | None,
    timeout: float,
    json_output: bool,
    no_color: bool,
) -> None:
    """Type lines, read them back upper-cased (the lecture's client).

    An empty line or Ctrl-D (EOF, as the server logs it) ends the session
    (exit 0); the server going away ends it with exit 1.  The server is
    HOST and PORT (as with ncat; HOST may be HOST:PORT) or --host and --port.
    On a terminal, lines can be edited and earlier ones recalled (readline:
    arrow keys, Ctrl-A/E, history for the session); from a pipe or a file,
    lines are read as they are.

    \b
    Examples:
      netkit upper-server chat
      netkit upper-server chat 127.0.0.1 2345
      netkit upper-server chat -H '[::1]:2345'
    """
    from netkit.clients.upper import LineClient, chat_loop, chat_readline

    name, port = positional_endpoint(target, host, port)
    out = renderer(json_output, no_color)
    interactive = sys.stdin.isatty()
    with LineClient(name, port, version=version, timeout=timeout) as client:
        if interactive:
            click.echo(f"connected to {client.server}; empty line or Ctrl-D to quit", err=True)
        if interactive and sys.stdout.isatty() and _has_readline():
            chat_readline(client, out)  # line editing and history
        else:
            chat_loop(client, out, prompt="> " if interactive else "")
    out.close()


def _has_readline() -> bool:
    import importlib.util

    return importlib.util.find_spec("readline") is not None

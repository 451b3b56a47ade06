"""The ``netkit`` command: a click group whose subcommands load lazily.

Only click is imported here: ``netkit --help`` and shell completion must not
pay for rich or the services.  Each registry entry names the module that
defines a command and its one-line help, so listing commands imports nothing.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import sys
from typing import Any, NoReturn

import click

from netkit import __version__

# name -> ("module:attribute", short help).  Grouped spellings.
COMMANDS: dict[str, tuple[str, str]] = {
    "pack-ip": (
        "netkit.cli.pack_ip:pack_ip",
        "Convert IP addresses and ports between text, packed bytes and integers.",
    ),
    "resolve": (
        "netkit.cli.resolve:resolve",
        "Look up a name or address (getaddrinfo, reverse, FQDN, or one DNS server).",
    ),
    "udp-echo": (
        "netkit.cli.udp_echo:udp_echo",
        "UDP echo server (upper-cases, like the lecture) and client with timeout and retries.",
    ),
    "creosote": (
        "netkit.cli.creosote:creosote",
        "Mr. Creosote: UDP remote-debug message sink (log file, syslog) and sender.",
    ),
    "tcp-time": (
        "netkit.cli.tcp_time:tcp_time",
        "Time server and client: daytime text (RFC 867) or binary time (RFC 868).",
    ),
    "upper-server": (
        "netkit.cli.upper_server:upper_server",
        "Line upper-caser over TCP or UDP (sync, thread, fork, async) with send and chat.",
    ),
    "anatomy": (
        "netkit.cli.anatomy:anatomy",
        "One real exchange captured and shown layer by layer (Ethernet, ARP, IP, TCP, DNS, HTTP).",
    ),
    "demo": (
        "netkit.cli.demo:demo",
        "Run the lecture's exercises on loopback and show each exchange.",
    ),
    "completion": (
        "netkit.cli.completion:completion",
        "Print or install shell completion for bash, zsh or fish.",
    ),
}

# Flat spellings from the original exercise card: alias -> grouped command path.
ALIASES: dict[str, tuple[str, str]] = {
    "creosote-listen": ("creosote", "listen"),
    "creosote-spew": ("creosote", "spew"),
}


def short_help(command: click.Command) -> str:
    """A command's whole one-line summary: its short_help, else the first
    paragraph of its help.  (click's default cuts at the first period, so
    "Mr. Creosote: ..." became "Mr.", and at 45 columns.)"""
    if command.short_help:
        return command.short_help
    first = (command.help or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split())


_HYPHEN_IN_WORD = re.compile(r"(?<=\w)-(?=\w)")
_KEPT_HYPHEN = "\u2011"  # a non-breaking hyphen, one column wide like "-"


def _keep(text: str) -> str:
    return _HYPHEN_IN_WORD.sub(_KEPT_HYPHEN, text)


class HelpFormatter(click.HelpFormatter):
    """click's help formatter, wrapping only at spaces: never after the hyphen
    of ``udp-echo`` or ``--max-line`` (its wrapper breaks on hyphens)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(_keep(prog), _keep(args), prefix)

    def write_text(self, text: str) -> None:
        super().write_text(_keep(text))

    def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(_keep(a), _keep(b)) for a, b in rows], col_max, col_spacing)

    def getvalue(self) -> str:
        return super().getvalue().replace(_KEPT_HYPHEN, "-")


class Context(click.Context):
    formatter_class = HelpFormatter


def _with_short_help(command: click.Command, summary: str | None = None) -> click.Command:
    # completion (zsh, fish) and the man pages show these summaries
    command.short_help = summary or short_help(command)
    command.context_class = Context
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_short_help(sub)
    return command


def _load(target: str) -> click.Command:
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    assert isinstance(command, click.Command)
    return command


def exit_interrupted(what: str = "interrupted") -> NoReturn:
    """Ctrl-C: ``Aborted: WHAT.`` on stderr (on a line of its own after the ``^C``
    a terminal echoed) and exit status 130, as a shell expects (128 + SIGINT)."""
    after_ctrl_c = "\n" if sys.stderr is not None and sys.stderr.isatty() else ""
    try:
        sys.stderr.write(f"{after_ctrl_c}Aborted: {what}.\n")
        sys.stderr.flush()
    except (OSError, AttributeError):
        pass
    raise click.exceptions.Exit(130)


class LazyGroup(click.Group):
    """Loads a subcommand's module only when that subcommand is used.

    Every command's Ctrl-C ends here (servers stop on their own SIGINT
    handler first): one line and exit 130 (:func:`exit_interrupted`),
    instead of click's ``Aborted!`` and 1."""

    context_class = Context

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            exit_interrupted()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS) + sorted(ALIASES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            target, summary = COMMANDS[cmd_name]
            return _with_short_help(_load(target), summary)
        if cmd_name in ALIASES:
            group_name, sub = ALIASES[cmd_name]
            group = self.get_command(ctx, group_name)
            assert isinstance(group, click.Group)
            return group.get_command(ctx, sub)
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        if ALIASES:
            aliases = [(a, f"= netkit {g} {s}") for a, (g, s) in sorted(ALIASES.items())]
            with formatter.section("Aliases"):
                formatter.write_dl(aliases)


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT_SETTINGS,
    short_help="sockets exercises turned into tools: test servers and clients, lookups, packing",
)
@click.version_option(__version__, "-V", "--version", prog_name="netkit")
def cli() -> None:
    """netkit: sockets exercises turned into tools.

    Test servers and clients for UDP and TCP, a remote-debug log sink, name
    lookups and address packing.  Every command takes --json for one JSON
    object per line on stdout; exit status is 0 on success, 1 when the
    network or a file fails, 2 for a usage error.
    """


class _ClosedStdin(io.TextIOBase):
    """sys.stdin when the command was started with standard input closed (``<&-``).

    Commands that never read stdin work as usual; one that does (``send -``,
    ``chat``, ``spew -``) fails with one ``Error:`` line (exit 1) instead of
    an AttributeError on ``None``.
    """

    def _closed(self, *_args: object) -> Any:
        raise click.ClickException(
            "standard input is closed, and this command reads from it "
            "(give it input, or </dev/null for none)"
        )

    read = readline = readlines = isatty = fileno = __iter__ = _closed

    @property
    def buffer(self) -> Any:
        return self._closed()


def _guard_standard_fds() -> bool:
    """Put /dev/null on a closed fd 0, 1 or 2, so that no socket or file the
    command opens lands there (a socket on fd 1 would receive the output).
    Returns whether stdout was closed."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
            new = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
    if 0 in closed:
        sys.stdin = _ClosedStdin()
    return 1 in closed


def _silence_stdout() -> None:
    """/dev/null on fd 1, so the interpreter's final flush of stdout is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _fail(message: str) -> None:
    """``Error: message`` on fd 2, stdout silenced for the interpreter's final flush, exit 1."""
    os.write(2, f"Error: {message}\n".encode(errors="replace"))
    _silence_stdout()
    sys.exit(1)


def _flush_stdout(*, failed: bool) -> None:
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or failed:
            # the reader left, or the failure was already reported in one line
            _silence_stdout()
            sys.exit(1)
        from netkit.net import describe_error

        _fail(f"standard output: {describe_error(exc)}")


def main() -> None:
    """Console-script entry point."""
    if _guard_standard_fds():
        # nothing netkit prints could be read: say so rather than exit 0 with output lost
        _fail(
            "standard output is closed (>&-): netkit writes its results there "
            "(redirect it to /dev/null to discard them)"
        )
    try:
        cli.main(prog_name="netkit")
    except SystemExit as exc:
        # output still buffered fails here, not in the interpreter's final
        # flush (which would print "Exception ignored" and exit 120)
        _flush_stdout(failed=exc.code not in (0, None))
        raise
    except BrokenPipeError:
        # stdout went away (`netkit ... | head -1`): no traceback.  Point
        # stdout at /dev/null so the interpreter's final flush is silent.
        _silence_stdout()
        sys.exit(1)
    except OSError as exc:
        # an OSError no command turned into its own line: writing the output
        # (stdout on a full disk, /dev/full, ...) is the usual one
        from netkit.net import describe_error

        _fail(describe_error(exc))

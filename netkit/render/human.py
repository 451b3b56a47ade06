"""Rich output for humans: results on stdout, status and logs on stderr.

Untrusted text (payloads, names from a lookup) always goes through
:func:`netkit.protocols.text.escape` and into ``rich.text.Text`` objects,
never through markup parsing, so neither terminal escapes nor rich markup
from the network can take effect.  Colour only on a terminal; ``NO_COLOR``
(read by rich) and ``--no-color`` turn it off.
"""

from __future__ import annotations

import errno
import sys
import time
from typing import Protocol

from rich.console import Console
from rich.text import Text

from netkit.events import Event, Listening, Notice, Summary
from netkit.protocols.text import escape
from netkit.render import family_module, lite
from netkit.render.lite import RECEIVED as RECEIVED  # the family modules' names, from here
from netkit.render.lite import SENT as SENT
from netkit.render.lite import (
    Handler,
    Line,
    Lines,
    notice_lines,
    plain_requested,
    plain_stream,
)
from netkit.render.lite import Handlers as Handlers

HANDLERS = Handlers()  # the base family: listening, notice, summary
_FOUND: dict[type[Event], Handler] = {}


def handler_for(kind: type[Event]) -> Handler:
    """The human handler of *kind*, from the render module named after its family.

    ``netkit.events.udp_echo.Datagram`` is handled in ``netkit.render.udp_echo``,
    imported on the first such event, so a command loads only the renderers of
    the events it shows.  An event with no handler is shown field by field.
    """
    found = _FOUND.get(kind)
    if found is None:
        found = _family_handlers(kind).get(kind, _generic)
        _FOUND[kind] = found
    return found


def _family_handlers(kind: type[Event]) -> Handlers:
    if kind.__module__ == "netkit.events.base":
        return HANDLERS
    module = family_module(kind)
    handlers: Handlers = module.HANDLERS if module is not None else Handlers()
    return handlers


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class _Console(Console):
    """rich's Console, except that a closed pipe raises ``BrokenPipeError``.

    rich's own reaction is ``SystemExit(1)`` from whichever thread wrote: in
    a server's serving thread that ended the thread silently and left the
    process running, deaf (`netkit upper-server serve 2>&1 | head -1`).
    Raised as the error it is, the server runner stops the server instead,
    and ``main()`` exits 1 without a traceback.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more to this stream
        raise BrokenPipeError(errno.EPIPE, "output closed")


def _console(*, stderr: bool, no_color: bool) -> Console:
    # --no-color / NO_COLOR: no escape sequences at all, bold and dim included
    plain = plain_requested(no_color)
    return _Console(
        file=plain_stream(sys.stderr if stderr else sys.stdout),
        stderr=stderr,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
        color_system=None if plain else "auto",
    )


class HumanRenderer:
    def __init__(self, *, no_color: bool = False, quiet: bool = False) -> None:
        self.out = _console(stderr=False, no_color=no_color)
        self.err = _console(stderr=True, no_color=no_color)
        self.quiet = quiet
        self.hex = False  # --hex: a hex view of each payload after its line
        # a live display at the bottom of stderr (upper-server on a terminal);
        # the summary handler stops it before it prints
        self.live: _Stoppable | None = None

    def __call__(self, event: Event) -> None:
        handler_for(type(event))(self, event)

    def close(self) -> None:
        for console in (self.out, self.err):
            console.file.flush()

    # helpers for handlers -------------------------------------------------
    def log(self, *parts: str | Text, style: str = "") -> None:
        """One timestamped log line on stderr."""
        line = Text()
        line.append(time.strftime("%H:%M:%S "), style="dim")  # only the time is dim
        for part in parts:
            line.append(part if isinstance(part, Text) else Text(part, style=style))
        self.err.print(line)

    def prose(self, text: str, indent: int = 2) -> None:
        """An explanation: wrapped at word boundaries to the console width, indented.

        (Log lines stay one event a line; only results' explanations wrap.)
        """
        for line in lite.prose(self, text, indent):
            print_line(self.out, line)

    def print_lines(self, lines: Lines) -> None:
        """Print what a line handler (``LINES`` of a render module) made."""
        for where, line in lines:
            print_line(self.out if where == "out" else self.err, line)

    def hexdump(self, data: bytes | None, mark: str, *, stderr: bool = True) -> None:
        """With ``--hex``: the hex view of *data* (``>`` sent, ``<`` received);
        servers draw it on stderr under their log line, clients on stdout."""
        if not self.hex or data is None:
            return
        from netkit.render.hexdump import hexdump

        (self.err if stderr else self.out).print(hexdump(data, mark), soft_wrap=True)

    def status(self, message: str | Text, style: str = "") -> None:
        self.err.print(message if isinstance(message, Text) else Text(message, style=style))

    def interrupted(self) -> None:
        """After Ctrl-C: end the line the terminal echoed ``^C`` on."""
        if self.err.is_terminal:
            self.err.print()


def _generic(r: HumanRenderer, event: Event) -> None:
    fields = event.as_dict()
    name = fields.pop("event")
    text = Text(f"{name}", style="bold")
    for key, value in fields.items():
        text.append(f" {key}=")
        text.append(escape(str(value)))
    r.err.print(text)


def to_text(line: Line) -> Text:
    """A :class:`netkit.render.lite.Line` as rich's Text: the base style, then
    each piece appended with its own (exactly what lite writes for it)."""
    text = Text(style=line.style)
    for piece, style in line.pieces:
        # None, not "": rich 13 makes a span of "" too, and a span splits a segment
        text.append(piece, style=style or None)
    return text


@HANDLERS.on(Notice)
def _notice(r: HumanRenderer, ev: Notice) -> None:
    r.print_lines(notice_lines(r, ev))


@HANDLERS.on(Listening)
def _listening(r: HumanRenderer, ev: Listening) -> None:
    host = f"[{ev.host}]" if ":" in ev.host else ev.host
    r.status(
        Text.assemble(
            ("listening on ", ""),
            (f"{ev.transport} {host}:{ev.port}", "bold green"),
            (f" with --mode {ev.mode}" if ev.mode else "", ""),
            (_impl(ev), ""),
            (f" on {ev.loop}" if ev.loop else "", ""),
            (f", logging to {escape(ev.logfile)}" if ev.logfile else "", ""),
            ({True: ", IPv6 and IPv4", False: ", IPv6 only", None: ""}[ev.dual_stack], ""),
            (" (Ctrl-C to stop)", "dim"),
        )
    )


def _impl(ev: Listening) -> str:
    """`` on socketserver.TCPServer`` when the standard library's class runs."""
    if ev.impl != "socketserver" or ev.mode is None:
        return ""
    from netkit.events.upper_server import SOCKETSERVER_CLASSES

    return f" on the standard library's socketserver.{SOCKETSERVER_CLASSES.get(ev.mode, '?')}"


def uptime(seconds: float) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 03 min``: how long a server ran."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@HANDLERS.on(Summary)
def _summary(r: HumanRenderer, ev: Summary) -> None:
    if r.live is not None:
        r.live.stop()
        r.live = None
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ev.counts.items())
    line = f"{ev.reason}: {counts}" if counts else ev.reason
    if ev.uptime is not None:
        line += f"; up {uptime(ev.uptime)}"
    r.status(Text(line, style="bold"))


def print_hanging(console: Console, head: Text, body: Text, narrow_indent: int = 4) -> None:
    """*head* then *body* on one line.  On a terminal a *body* too long for the
    width wraps at word boundaries, each further line indented to where the
    body starts (never a word cut by the terminal); when that leaves less than
    :data:`MIN_ROOM` columns, the body goes under the head instead, indented
    by *narrow_indent*.  In a pipe it stays one line, for grep and scripts.
    (netkit.render.lite writes such a line only when it stays one line.)"""
    width = console.width - 1  # the last column makes some terminals wrap
    if not console.is_terminal or head.cell_len + body.cell_len <= width:
        console.print(head + body)
        return
    indent = head.cell_len
    if width - indent < MIN_ROOM:
        indent = narrow_indent
        head = head.copy()
        head.rstrip()
        console.print(head)
        head = Text(" " * indent)
    pad = Text(" " * indent)
    for i, part in enumerate(body.wrap(console, max(width - indent, MIN_ROOM))):
        part.rstrip()
        console.print((head if i == 0 else pad) + part)


MIN_ROOM = lite.MIN_ROOM  # columns a wrapped text needs beside its head


def print_line(console: Console, line: Line) -> None:
    """A :class:`netkit.render.lite.Line` on *console*; one with a hanging
    body through :func:`print_hanging`."""
    if line.body is None:
        console.print(to_text(line))
        return
    text, style = line.body
    print_hanging(console, to_text(line), Text(text, style=style), line.narrow_indent)


class Rows(lite.Rows):
    """Label / value / note lines, aligned; a long note wraps under itself on a
    terminal and stays one line in a pipe (:func:`print_hanging`)."""

    def print(self, console: Console) -> None:
        for line in self.lines():
            print_line(console, line)

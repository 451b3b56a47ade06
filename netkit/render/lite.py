"""Human output without rich, for the one-shot commands' simple lines.

A one-shot command (``pack-ip``, ``resolve``, ``udp-echo send``, ``tcp-time
get``, ``upper-server send``) prints a few lines; importing rich for them
costs more than the rest of the command.  Their handlers describe each line
once, as a :class:`Line` (a base style and styled pieces, the way a
``rich.text.Text`` holds them), and two back ends print it:

- :class:`netkit.render.human.HumanRenderer` turns it into a ``Text`` and
  lets rich print it, as for every other event;
- :class:`LiteRenderer` (here) writes the same bytes itself: it decides
  what rich's ``Console`` would decide (terminal or not, colour or not, the
  width, the ASCII fallbacks of :func:`plain_stream`) and writes rich's SGR
  sequences for each segment.

Lite never guesses.  Where rich's choice depends on something lite does not
model (an environment rich versions read differently: ``FORCE_COLOR=``,
``NO_COLOR=``, ``TTY_COMPATIBLE``; Jupyter or IDLE; Windows), or a line
rich would lay out itself (a tab or a line break inside a piece, a lone
surrogate), it hands over to rich: for the whole command when the
environment is the reason (:func:`lite_usable`), and from that event on
otherwise.  An event that has no line handler (a server's ``listening``, a
log line, a table) goes to rich as well, and everything after it, so lite
output never follows rich output (a live display may be up).

Internal switch: ``NETKIT_RENDER=rich`` makes :func:`netkit.render.make_renderer`
use rich for everything.  It exists for the tests that compare the two back
ends byte for byte (tests/e2e/test_lite_output.py); it is not a user option.
"""

from __future__ import annotations

import builtins
import codecs
import errno
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO, TypeVar, cast

from netkit.events.base import Event, Notice
from netkit.protocols.text import escape
from netkit.render import family_module

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

E = TypeVar("E", bound=Event)
Handler = Callable[["HumanRenderer", Any], None]

# the direction marks of the --hex view (netkit.render.hexdump, loaded only with --hex)
SENT = ">"
RECEIVED = "<"


class Handlers(dict[type[Event], Handler]):
    """The human (rich) handlers of one event family, keyed by event type.

    Each module of :mod:`netkit.render` named after a family of
    :mod:`netkit.events` has one, ``HANDLERS``, filled by :meth:`on`; an
    event type has at most one handler (a second one is an error, not a
    silent replacement).
    """

    def on(
        self, kind: type[E]
    ) -> Callable[[Callable[[HumanRenderer, E], None]], Callable[[HumanRenderer, E], None]]:
        def register(fn: Callable[[HumanRenderer, E], None]) -> Callable[[HumanRenderer, E], None]:
            if kind in self:
                raise ValueError(f"{kind.__name__} has a human handler already")
            self[kind] = fn
            return fn

        return register


# -- lines ------------------------------------------------------------------------


class Line:
    """One line of output: pieces of text, each with a style, and a base style
    under all of them (rich's ``Text(style=...)``).  A style is what rich
    spells it: ``"bold"``, ``"dim"``, ``"bold cyan"``; ``""`` is none.

    A *body* (text, style) hangs after the pieces: on a terminal, when the
    line is too wide, it wraps under itself (or under the line, indented by
    *narrow_indent*) the way :func:`netkit.render.human.print_hanging` does;
    lite writes such a line only when it stays one line, else rich does.
    """

    __slots__ = ("body", "narrow_indent", "pieces", "style")

    def __init__(
        self,
        *pieces: str | tuple[str, str],
        style: str = "",
        body: tuple[str, str] | None = None,
        narrow_indent: int = 4,
    ) -> None:
        self.pieces = [(p, "") if isinstance(p, str) else p for p in pieces]
        self.style = style
        self.body = body
        self.narrow_indent = narrow_indent

    def __repr__(self) -> str:
        return f"Line({self.pieces!r}, style={self.style!r}, body={self.body!r})"


Where = Literal["out", "err"]
Lines = list[tuple[Where, Line]]


class View(Protocol):
    """What a line handler may ask of its renderer (either back end)."""

    # rich's Console, or this module's _Stream: a handler asks for
    # is_terminal and width, which both have
    out: Any
    err: Any
    quiet: bool


LineHandler = Callable[[View, Any], Lines]


class LineHandlers(dict[type[Event], LineHandler]):
    """The line handlers of one event family (``LINES`` in its render module):
    for each event type, the lines it shows and where (stdout or stderr)."""

    def on(
        self, kind: type[E]
    ) -> Callable[[Callable[[View, E], Lines]], Callable[[View, E], Lines]]:
        def register(fn: Callable[[View, E], Lines]) -> Callable[[View, E], Lines]:
            if kind in self:
                raise ValueError(f"{kind.__name__} has a line handler already")
            self[kind] = fn
            return fn

        return register


LINES = LineHandlers()  # the base family: notice


_FOUND: dict[type[Event], LineHandler | None] = {}


def line_handler_for(kind: type[Event]) -> LineHandler | None:
    """The line handler of *kind* from ``LINES`` in the render module of its
    family (``netkit.render.udp_echo`` for ``netkit.events.udp_echo``), or None."""
    if kind not in _FOUND:
        _FOUND[kind] = _family_lines(kind).get(kind)
    return _FOUND[kind]


def _family_lines(kind: type[Event]) -> LineHandlers:
    if kind.__module__ == "netkit.events.base":
        return LINES
    handlers: LineHandlers = getattr(family_module(kind), "LINES", None) or LineHandlers()
    return handlers


MIN_ROOM = 30  # columns a wrapped text needs beside its head (print_hanging)


class Rows:
    """Label / value / note lines, aligned; a long note wraps under itself on
    a terminal and stays one line in a pipe (a hanging body)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add_row(self, label: str, value: str, note: str = "") -> None:
        self.rows.append((label, value, note))

    def lines(self) -> list[Line]:
        lw = max((len(r[0]) for r in self.rows), default=0)
        vw = max((len(r[1]) for r in self.rows), default=0)
        out = []
        for label, value, note in self.rows:
            head = (label.ljust(lw + 2), value.ljust(vw + 2) if note else value)
            out.append(Line(*head, style="bold cyan", body=(note, "dim"), narrow_indent=lw + 2))
        return out


def prose(r: View, text: str, indent: int = 2) -> list[Line]:
    """An explanation: wrapped at word boundaries to stdout's width, indented.

    (Log lines stay one event a line; only results' explanations wrap.)
    """
    import textwrap

    pad = " " * indent
    width = max(r.out.width - 1, 20 + indent)  # the last column makes terminals wrap
    wrapped = textwrap.wrap(text, width, initial_indent=pad, subsequent_indent=pad)
    return [Line(line, style="dim") for line in wrapped]


@LINES.on(Notice)
def notice_lines(r: View, ev: Notice) -> Lines:
    style = {"error": "bold red", "warning": "yellow"}.get(ev.level, "")
    return [("err", Line(f"netkit: {ev.level}: {escape(ev.message)}", style=style))]


# -- streams as rich sees them ------------------------------------------------------


def speaks_unicode(stream: TextIO | None) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def plain_stream(stream: TextIO) -> TextIO | None:
    """What the human renderers write to for *stream*: None for the stream
    itself (it speaks Unicode), else :class:`netkit.render.ascii.Transliterating`."""
    if speaks_unicode(stream):
        return None
    from netkit.render.ascii import Transliterating

    return cast(TextIO, Transliterating(stream))


def plain_requested(no_color: bool) -> bool:
    """--no-color / NO_COLOR: no escape sequences at all, bold and dim included."""
    return no_color or bool(os.environ.get("NO_COLOR"))


def lite_usable() -> bool:
    """Whether lite knows what rich would write in this environment.

    rich 13 (the floor) and rich 14+ read some variables differently: an
    empty ``FORCE_COLOR`` (13: a terminal; 14: not), an empty ``NO_COLOR``
    (13: colours off, bold kept; 14: ignored), ``TTY_COMPATIBLE`` (14 only).
    There, and under Jupyter, IDLE or Windows, or with a ``COLUMNS`` or
    ``LINES`` rich cannot read, or a closed standard stream, rich does it.
    """
    env = os.environ
    if sys.platform == "win32" or sys.stdout is None or sys.stderr is None:
        return False
    if env.get("FORCE_COLOR") == "" or env.get("NO_COLOR") == "":
        return False
    if env.get("TTY_COMPATIBLE") in ("0", "1"):
        return False
    if "get_ipython" in vars(builtins):  # IPython / Jupyter
        return False
    if getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return False
    for name in ("COLUMNS", "LINES"):
        value = env.get(name)
        if value is not None and value.isdigit():
            try:
                int(value)
            except ValueError:  # a digit int() does not take (superscripts)
                return False
    return True


# rich's SGR parameters: attributes in its order, then the foreground colour
_ATTRIBUTES = {
    "bold": 1,
    "dim": 2,
    "italic": 3,
    "underline": 4,
    "blink": 5,
    "blink2": 6,
    "reverse": 7,
    "conceal": 8,
    "strike": 9,
}
_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_COLOURS = {name: 30 + i for i, name in enumerate(_NAMES)} | {
    f"bright_{name}": 90 + i for i, name in enumerate(_NAMES)
}
_SGR: dict[tuple[str, ...], str] = {}


def sgr(*styles: str) -> str:
    """The SGR parameters rich writes for these styles combined (later colours
    win, attributes add up): ``sgr("bold cyan", "dim") == "1;2;36"``."""
    found = _SGR.get(styles)
    if found is None:
        attributes: set[int] = set()
        colour: int | None = None
        for style in styles:
            for word in style.split():
                if word in _ATTRIBUTES:
                    attributes.add(_ATTRIBUTES[word])
                elif word in _COLOURS:
                    colour = _COLOURS[word]
                else:
                    raise ValueError(f"lite output does not know the style {word!r}")
        codes = sorted(attributes) + ([colour] if colour is not None else [])
        found = _SGR[styles] = ";".join(map(str, codes))
    return found


# what rich.text.Text removes from every string it is given
_STRIP = dict.fromkeys((7, 8, 11, 12, 13))


class Decline(Exception):
    """A line lite cannot write exactly as rich would: rich writes it."""


def _segments(line: Line) -> list[tuple[str, tuple[str, ...]]]:
    """The segments rich renders *line* as (its body last, on one line): a
    styled piece is a span of its own (so a segment); unstyled neighbours form
    one segment under the base style; empty pieces vanish."""
    base = (line.style,) if line.style else ()
    out: list[tuple[str, tuple[str, ...]]] = []
    plain_run: list[str] = []
    pieces = line.pieces if line.body is None else [*line.pieces, line.body]
    for text, style in pieces:
        text = text.translate(_STRIP)
        if not text:
            continue
        if "\n" in text or "\t" in text:
            raise Decline("rich lays out tabs and line breaks itself")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise Decline("a lone surrogate") from None
        if style:
            if plain_run:
                out.append(("".join(plain_run), base))
                plain_run = []
            out.append((text, (*base, style)))
        else:
            plain_run.append(text)
    if plain_run:
        out.append(("".join(plain_run), base))
    return out


class _Stream:
    """stdout or stderr as netkit's rich Console sees it (netkit.render.human)."""

    def __init__(self, *, stderr: bool, plain: bool) -> None:
        self.stderr = stderr
        self._file = plain_stream(self._raw())
        self.quiet = False  # the reader left: nothing more to this stream
        # rich picks its colour system once, when the console is made
        self.colour = not plain and self.is_terminal and not self.is_dumb_terminal

    def _raw(self) -> TextIO:
        return sys.stderr if self.stderr else sys.stdout

    @property
    def file(self) -> TextIO:
        return self._file or self._raw()

    @property
    def is_terminal(self) -> bool:
        if os.environ.get("FORCE_COLOR") is not None:  # set and not empty (lite_usable)
            return True
        isatty = getattr(self.file, "isatty", None)
        try:
            return False if isatty is None else bool(isatty())
        except ValueError:
            return False

    @property
    def is_dumb_terminal(self) -> bool:
        return self.is_terminal and os.environ.get("TERM", "").lower() in ("dumb", "unknown")

    @property
    def width(self) -> int:
        env = os.environ
        columns, lines = env.get("COLUMNS"), env.get("LINES")
        fixed = int(columns) if columns is not None and columns.isdigit() else None
        if fixed is not None and lines is not None and lines.isdigit():
            return fixed
        if self.is_dumb_terminal:
            return 80
        if fixed is not None:
            return fixed
        width = None
        for fd in (0, 1, 2):
            try:
                width = os.get_terminal_size(fd)[0]
            except (AttributeError, ValueError, OSError):
                continue
            break
        return width or 80

    def render(self, line: Line) -> str:
        segments = _segments(line)
        if line.body is not None and self.is_terminal:
            # one line if it fits the width (rich's cell widths: ASCII only here)
            text = "".join(text for text, _ in segments)
            if not (text.isascii() and text.isprintable()) or len(text) > self.width - 1:
                raise Decline("rich wraps the body of a line too wide for the terminal")
        if not self.colour:
            return "".join(text for text, _ in segments) + "\n"
        parts = []
        for text, styles in segments:
            codes = sgr(*styles) if styles else ""
            parts.append(f"\x1b[{codes}m{text}\x1b[0m" if codes else text)
        return "".join(parts) + "\n"

    def write(self, text: str) -> None:
        if self.quiet:
            return
        try:
            file = self.file
            file.write(text)
            file.flush()
        except BrokenPipeError:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "output closed") from None


class LiteRenderer:
    """The human renderer of the one-shot commands: their lines without rich,
    anything else (and everything after it) through rich's HumanRenderer."""

    def __init__(self, *, no_color: bool = False, quiet: bool = False) -> None:
        self.no_color = no_color
        self.quiet = quiet
        self.hex = False  # --hex is rich's (make_renderer): kept for the hand-over
        plain = plain_requested(no_color)
        self.out = _Stream(stderr=False, plain=plain)
        self.err = _Stream(stderr=True, plain=plain)
        self._rich: HumanRenderer | None = None
        self._lock = threading.RLock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._rich is None and self._lite(event):
                return
            rich = self.rich()
        rich(event)

    def _lite(self, event: Event) -> bool:
        handler = line_handler_for(type(event))
        if handler is None:
            return False
        try:
            written = [
                (where, self._stream(where).render(line)) for where, line in handler(self, event)
            ]
        except Decline:
            return False
        for where, text in written:
            self._stream(where).write(text)
        return True

    def _stream(self, where: Where) -> _Stream:
        return self.out if where == "out" else self.err

    def rich(self) -> HumanRenderer:
        """rich's renderer, from now on the only one that writes."""
        with self._lock:
            if self._rich is None:
                from netkit.render.human import HumanRenderer

                self._rich = HumanRenderer(no_color=self.no_color, quiet=self.quiet)
                self._rich.hex = self.hex
            return self._rich

    @property
    def live(self) -> Any:
        """rich's live display, if one is up (``netkit demo`` takes it down on Ctrl-C)."""
        return None if self._rich is None else self._rich.live

    def interrupted(self) -> None:
        """After Ctrl-C: end the line the terminal echoed ``^C`` on."""
        if self._rich is not None:
            self._rich.interrupted()
        elif self.err.is_terminal:
            self.err.write("\n")

    def close(self) -> None:
        if self._rich is not None:
            self._rich.close()
            return
        for stream in (self.out, self.err):
            stream.file.flush()

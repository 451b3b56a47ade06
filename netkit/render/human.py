"""Rich output for humans: results on stdout, status and logs on stderr.

Untrusted text (payloads, names from a lookup) always goes through
:func:`netkit.protocols.text.escape` and into ``rich.text.Text`` objects,
never through markup parsing, so neither terminal escapes nor rich markup
from the network can take effect.  Colour only on a terminal; ``NO_COLOR``
(read by rich) and ``--no-color`` turn it off.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO, TypeVar, cast

from rich.console import Console
from rich.text import Text

from netkit.events import (
    AddressPacked,
    Event,
    Listening,
    NetworkInfo,
    Notice,
    PortPacked,
    Resolved,
    Summary,
)
from netkit.protocols.text import escape

E = TypeVar("E", bound=Event)
Handler = Callable[["HumanRenderer", Any], None]
_HANDLERS: dict[type[Event], Handler] = {}


def handles(kind: type[E]) -> Callable[[Callable[[HumanRenderer, E], None]], Handler]:
    def register(fn: Callable[[HumanRenderer, E], None]) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


# Handlers for the services' events live in these modules; they are imported
# the first time an event without a handler here arrives, so a command that
# only prints a result (pack-ip, resolve) does not pay for them.
_PLUGINS = (
    "netkit.render.dgram",
    "netkit.render.stream",
    "netkit.render.demo",
)


def _load_plugins() -> None:
    import importlib

    for name in _PLUGINS:
        importlib.import_module(name)


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


# what the renderers draw, for a terminal or pipe whose encoding has no
# Unicode (PYTHONIOENCODING=ascii, LANG=C on an old system)
_ASCII_GLYPHS = str.maketrans(
    {
        "✓": "ok",
        "✗": "no",
        "─": "-",
        "━": "=",
        "│": "|",
        "→": "->",
        "…": "...",
        "·": ".",
        "▶": ">",
        "◀": "<",
        "\u00a0": " ",
    }
)


def _u_escape(exc: UnicodeError) -> tuple[str, int]:
    # \uNNNN, never \xNN: netkit writes \xNN only for bytes that are not UTF-8
    assert isinstance(exc, UnicodeEncodeError)
    chars = exc.object[exc.start : exc.end]
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in chars
    ), exc.end


codecs.register_error("netkit-uescape", _u_escape)


class _Transliterating(io.TextIOBase):
    """A text stream in an encoding without Unicode: the renderers' glyphs in
    ASCII, anything else it cannot encode written as ``\\uNNNN`` (the way
    netkit escapes text anyway), never a UnicodeEncodeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only here: the stream's
        return self._stream.encoding

    def write(self, text: str) -> int:
        encoding = self._stream.encoding
        safe = text.translate(_ASCII_GLYPHS).encode(encoding, "netkit-uescape")
        self._stream.write(safe.decode(encoding))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def _speaks_unicode(stream: TextIO | None) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def _console(*, stderr: bool, no_color: bool) -> Console:
    # --no-color / NO_COLOR: no escape sequences at all, bold and dim included
    plain = no_color or bool(os.environ.get("NO_COLOR"))
    stream = sys.stderr if stderr else sys.stdout
    return _Console(
        file=None if _speaks_unicode(stream) else cast(TextIO, _Transliterating(stream)),
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

    def __call__(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            _load_plugins()
            handler = _HANDLERS.get(type(event), _generic)
        handler(self, event)

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
        import textwrap

        pad = " " * indent
        width = max(self.out.width - 1, 20 + indent)  # the last column makes terminals wrap
        for line in textwrap.wrap(text, width, initial_indent=pad, subsequent_indent=pad):
            self.out.print(Text(line, style="dim"))

    def status(self, message: str | Text, style: str = "") -> None:
        self.err.print(message if isinstance(message, Text) else Text(message, style=style))


def _generic(r: HumanRenderer, event: Event) -> None:
    fields = event.as_dict()
    name = fields.pop("event")
    text = Text(f"{name}", style="bold")
    for key, value in fields.items():
        text.append(f" {key}=")
        text.append(escape(str(value)))
    r.err.print(text)


@handles(Notice)
def _notice(r: HumanRenderer, ev: Notice) -> None:
    style = {"error": "bold red", "warning": "yellow"}.get(ev.level, "")
    r.status(Text(f"netkit: {ev.level}: {escape(ev.message)}", style=style))


@handles(Listening)
def _listening(r: HumanRenderer, ev: Listening) -> None:
    host = f"[{ev.host}]" if ":" in ev.host else ev.host
    r.status(
        Text.assemble(
            ("listening on ", ""),
            (f"{ev.transport} {host}:{ev.port}", "bold green"),
            (f" with --mode {ev.mode}" if ev.mode else "", ""),
            (f" on {ev.loop}" if ev.loop else "", ""),
            (" (Ctrl-C to stop)", "dim"),
        )
    )


@handles(Summary)
def _summary(r: HumanRenderer, ev: Summary) -> None:
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ev.counts.items())
    r.status(Text(f"{ev.reason}: {counts}" if counts else ev.reason, style="bold"))


class _Rows:
    """Label / value / note lines, aligned, never wrapped (readable when piped too)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add_row(self, label: str, value: str, note: str = "") -> None:
        self.rows.append((label, value, note))

    def print(self, console: Console) -> None:
        lw = max((len(r[0]) for r in self.rows), default=0)
        vw = max((len(r[1]) for r in self.rows), default=0)
        for label, value, note in self.rows:
            line = Text(label.ljust(lw + 2), style="bold cyan")
            line.append(value.ljust(vw + 2) if note else value)
            if note:
                line.append(note, style="dim")
            console.print(line)


def _grid() -> _Rows:
    return _Rows()


def _spaced_hex(hexstr: str) -> str:
    return " ".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2))


@handles(AddressPacked)
def _address(r: HumanRenderer, ev: AddressPacked) -> None:
    fam = f"IPv{ev.family}"
    r.out.print(
        Text.assemble(
            (escape(ev.address), "bold"),
            (f"  {fam}, read as {escape(ev.read_as)}", "dim"),
        )
    )
    grid = _grid()
    nbytes = len(ev.packed) // 2
    grid.add_row(
        "packed",
        _spaced_hex(ev.packed),
        f"inet_{'aton' if ev.family == 4 else 'pton'}(): {nbytes} bytes, network byte order",
    )
    width = 8 * nbytes
    unpack = "struct.unpack('!I', packed)[0]" if ev.family == 4 else "int.from_bytes(packed, 'big')"
    grid.add_row("integer", f"{ev.integer}", f"{width}-bit, network order: {unpack}")
    grid.add_row("hex", f"0x{ev.integer:0{nbytes * 2}x}", "")
    if ev.mapped_ipv4 is not None:
        grid.add_row("IPv4", ev.mapped_ipv4, "IPv4-mapped IPv6 address (::ffff:0:0/96, RFC 4291)")
    if ev.host_order_integer is not None:
        grid.add_row(
            "host order",
            f"{ev.host_order_integer} (0x{ev.host_order_integer:08x})",
            f"struct.unpack('=I', packed)[0] on this {ev.host_byteorder}-endian machine",
        )
    grid.print(r.out)
    if ev.family == 4:
        if ev.host_byteorder == "little":
            note = (
                "Network byte order is big-endian: the most significant byte goes first on "
                "the wire. This machine is little-endian, so htonl()/ntohl() reverse the four "
                "bytes, and reading the packed bytes in host order gives the second number."
            )
        else:
            note = (
                "Network byte order is big-endian, like this machine: htonl()/ntohl() change "
                "nothing here."
            )
        r.prose(note)
    elif ev.mapped_ipv4 is not None:
        r.prose(
            f"This IPv6 address names the IPv4 address {ev.mapped_ipv4}: a dual-stack "
            "socket shows IPv4 peers this way, and connecting to it reaches the IPv4 host."
        )


@handles(PortPacked)
def _port(r: HumanRenderer, ev: PortPacked) -> None:
    grid = _grid()
    grid.add_row("port", f"{ev.port}", "host integer")
    grid.add_row("packed", _spaced_hex(ev.packed), "htons(): 2 bytes, network byte order")
    grid.add_row(
        "host order",
        f"{ev.host_order_integer} (0x{ev.host_order_integer:04x})",
        f"struct.unpack('=H', packed)[0] on this {ev.host_byteorder}-endian machine",
    )
    grid.print(r.out)
    if ev.host_byteorder == "little":
        r.prose(
            "htons() swaps the two bytes on this little-endian machine; ntohs() swaps "
            "them back. Forgetting one of them turns the port into the last number."
        )


@handles(NetworkInfo)
def _network(r: HumanRenderer, ev: NetworkInfo) -> None:
    r.out.print(
        Text.assemble(
            (ev.network, "bold"),
            (f"  IPv{ev.family} network, /{ev.prefix_length}", "dim"),
        )
    )
    grid = _grid()
    grid.add_row("netmask", ev.netmask, f"{ev.prefix_length} one bits, then zeros")
    grid.add_row("hostmask", ev.hostmask, "the host part (wildcard mask)")
    if ev.broadcast is not None:
        grid.add_row("broadcast", ev.broadcast, "every host bit set")
    hosts = "host" if ev.hosts == 1 else "hosts"
    grid.add_row("hosts", f"{ev.first_host} - {ev.last_host}", f"{ev.hosts:,} {hosts}")
    grid.add_row("addresses", f"{ev.addresses:,}", "")
    grid.print(r.out)
    notes = []
    if ev.host_bits_set:
        notes.append(f"{ev.input} names an address inside the network {ev.network}.")
    if ev.family == 4 and ev.prefix_length == 31:
        notes.append("A /31 is a point-to-point link (RFC 3021): both addresses are hosts.")
    elif ev.family == 4 and ev.prefix_length < 31:
        notes.append("The first (network) and last (broadcast) addresses are not hosts.")
    elif ev.family == 6 and ev.prefix_length < 127:
        notes.append(
            "The first address is the Subnet-Router anycast address; IPv6 has no broadcast."
        )
    if notes:
        r.prose(" ".join(notes))


@handles(Resolved)
def _resolved(r: HumanRenderer, ev: Resolved) -> None:
    grid = _grid()
    grid.add_row("query", escape(ev.query), f"{ev.kind} lookup via {ev.source}")
    grid.add_row("canonical", escape(ev.canonical) or "-", "")
    grid.add_row("aliases", ", ".join(escape(a) for a in ev.aliases) or "-", "")
    from netkit.protocols.dnsstatus import describe_status

    def got(rtype: str) -> str:
        # with --server: say what a query type got when it was not an answer
        status = ev.status.get(rtype)
        return "" if status in (None, "answer") else f"{rtype}: {describe_status(status)}"

    asked_addresses = not ev.status or bool({"A", "AAAA"} & ev.status.keys())
    if asked_addresses and (ev.kind == "forward" or ev.ipv4 or ev.ipv6):
        grid.add_row("IPv4", ", ".join(escape(a) for a in ev.ipv4) or "-", got("A"))
        grid.add_row("IPv6", ", ".join(escape(a) for a in ev.ipv6) or "-", got("AAAA"))
    for rtype in ev.status:
        if rtype not in ("A", "AAAA") and got(rtype):
            grid.add_row(rtype, "-", got(rtype))
    for rec in ev.records:
        kind = str(rec.get("type"))
        if kind in ("A", "AAAA"):
            continue
        value = escape(str(rec.get("value")))
        if kind == "CNAME":  # the alias and where it points
            value = f"{escape(str(rec.get('name')))} -> {value}"
        grid.add_row(kind, value, f"ttl {rec.get('ttl')}")
    if ev.fqdn:
        grid.add_row("fqdn", escape(ev.fqdn), "getfqdn()")
    grid.print(r.out)

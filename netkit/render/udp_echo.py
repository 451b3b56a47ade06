"""Human output for udp-echo.

Every payload goes through :func:`escape` into a ``Text`` object: no markup
parsing, no terminal sequence from the network ever reaches the terminal.
The client's reply is a line handler (:mod:`netkit.render.lite`): written
without loading rich; the server's log lines are rich's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.udp_echo import Datagram, Reply
from netkit.protocols.text import escape, truncate
from netkit.render.lite import RECEIVED, SENT, Handlers, Line, LineHandlers, Lines, View

if TYPE_CHECKING:
    from rich.text import Text

    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()

_LOG_PAYLOAD = 400  # characters of payload in a udp-echo serve log line


@HANDLERS.on(Datagram)
def _datagram(r: HumanRenderer, ev: Datagram) -> None:
    from rich.text import Text

    parts: list[str | Text] = [
        Text(ev.peer, style="cyan"),
        Text(f" {ev.size} B ", style="dim"),
        Text(truncate(escape(ev.data), _LOG_PAYLOAD)),
    ]
    if ev.dropped:
        more = f" (+{ev.unlogged_drops} more not logged)" if ev.unlogged_drops else ""
        parts.append(Text(f"  not answered: {ev.dropped.replace('_', ' ')}{more}", style="yellow"))
    r.log(*parts)
    r.hexdump(ev.data, RECEIVED)
    if ev.replied:
        r.hexdump(ev.reply_wire, SENT)


@LINES.on(Reply)
def reply_lines(r: View, ev: Reply) -> Lines:
    # the reply alone on stdout (scripts read it); for a person at a terminal,
    # where it came from and how fast on stderr (--json has rtt_ms for scripts)
    lines: Lines = [("out", Line(escape(ev.data)))]
    if r.err.is_terminal:
        tries = f" (try {ev.tries})" if ev.tries > 1 else ""
        note = f"{ev.size} B from {ev.peer} in {ev.rtt_ms:g} ms{tries}"
        lines.append(("err", Line(note, style="dim")))
    return lines


@HANDLERS.on(Reply)
def _reply(r: HumanRenderer, ev: Reply) -> None:
    r.print_lines(reply_lines(r, ev))
    r.hexdump(ev.sent_wire, SENT, stderr=False)
    r.hexdump(ev.data, RECEIVED, stderr=False)

"""Human output for creosote spew: what was sent, and --hex's datagrams.

The sent line is a line handler (:mod:`netkit.render.lite`): written without
loading rich; the hex view of each datagram is rich's.  Apart from
:mod:`netkit.render.creosote` (the listener's), so a sender loads neither it
nor the syslog parser it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.creosote_spew import DatagramSent, Spewed
from netkit.render.lite import SENT, Handlers, Line, LineHandlers, Lines, View

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


@HANDLERS.on(DatagramSent)
def _datagram_sent(r: HumanRenderer, ev: DatagramSent) -> None:
    r.hexdump(ev.data, SENT, stderr=False)


@LINES.on(Spewed)
def spewed_lines(r: View, ev: Spewed) -> Lines:
    what = "chunk" if ev.chunks == 1 else "chunks"
    many = f"{ev.messages} messages, " if ev.messages != 1 else ""
    text = (
        f"sent {many}{ev.bytes} bytes in {ev.chunks} {what} ({ev.datagram_bytes} on the wire) "
        f"to {ev.peer}"
    )
    return [("err", Line(text, style="dim"))]


@HANDLERS.on(Spewed)
def _spewed(r: HumanRenderer, ev: Spewed) -> None:
    r.print_lines(spewed_lines(r, ev))

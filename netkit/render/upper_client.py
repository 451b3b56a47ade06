"""Human output for upper-server send and chat: the server's reply to each line.

The reply is a line handler (:mod:`netkit.render.lite`): written without
loading rich; ``--hex``'s view of the bytes is rich's.  Apart from
:mod:`netkit.render.upper_server` (the server's), so a client loads neither
it nor the server's events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.upper_client import LineReply
from netkit.protocols.text import escape
from netkit.render.lite import RECEIVED, SENT, Handlers, Line, LineHandlers, Lines, View

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


@LINES.on(LineReply)
def reply_lines(r: View, ev: LineReply) -> Lines:
    return [("out", Line(escape(ev.data)))]


@HANDLERS.on(LineReply)
def _reply(r: HumanRenderer, ev: LineReply) -> None:
    r.print_lines(reply_lines(r, ev))
    r.hexdump(ev.sent_wire, SENT, stderr=False)
    r.hexdump(ev.reply_wire, RECEIVED, stderr=False)

"""Human output for udp-echo.

Every payload goes through :func:`escape` into a ``Text`` object: no markup
parsing, no terminal sequence from the network ever reaches the terminal.
"""

from __future__ import annotations

from rich.text import Text

from netkit.events.udp_echo import Datagram, Reply
from netkit.protocols.text import escape, truncate
from netkit.render.human import Handlers, HumanRenderer

HANDLERS = Handlers()

_LOG_PAYLOAD = 400  # characters of payload in a udp-echo serve log line


@HANDLERS.on(Datagram)
def _datagram(r: HumanRenderer, ev: Datagram) -> None:
    parts: list[str | Text] = [
        Text(ev.peer, style="cyan"),
        Text(f" {ev.size} B ", style="dim"),
        Text(truncate(escape(ev.data), _LOG_PAYLOAD)),
    ]
    if ev.dropped:
        more = f" (+{ev.unlogged_drops} more not logged)" if ev.unlogged_drops else ""
        parts.append(Text(f"  not answered: {ev.dropped.replace('_', ' ')}{more}", style="yellow"))
    r.log(*parts)


@HANDLERS.on(Reply)
def _reply(r: HumanRenderer, ev: Reply) -> None:
    r.out.print(Text(escape(ev.data)))

"""Human output for creosote: one line per message, syslog fields picked out.

Every payload goes through :func:`escape` into a ``Text`` object: no markup
parsing, no terminal sequence from the network ever reaches the terminal.
"""

from __future__ import annotations

from rich.text import Text

from netkit.events.creosote import IncompleteMessage, Message, Spewed
from netkit.protocols import syslog
from netkit.protocols.text import escape
from netkit.render.human import Handlers, HumanRenderer

HANDLERS = Handlers()


def _clock(iso: str) -> str:
    # "2026-11-25T18:49:08.499+00:00" -> "18:49:08"
    return iso[11:19] if len(iso) >= 19 else iso


@HANDLERS.on(Message)
def _message(r: HumanRenderer, ev: Message) -> None:
    line = Text()
    line.append(_clock(ev.time) + " ", style="dim")
    line.append(ev.peer, style="cyan")
    line.append(" ")
    sl = ev.syslog
    if sl is not None:
        level = f"{sl['facility']}.{sl['severity']}"
        style = "bold red" if sl["severity"] in ("emerg", "alert", "crit", "err") else "magenta"
        line.append(level, style=style)
        who = " ".join(escape(str(sl[k])) for k in ("host", "app") if sl.get(k))
        if sl.get("procid"):
            who += f"[{escape(str(sl['procid']))}]"
        if who:
            line.append(f" {who}:", style="bold")
        parsed = syslog.parse(ev.data)  # the message part as bytes, escaped like any payload
        line.append(" " + escape(parsed.message if parsed is not None else ev.data))
    else:
        if ev.chunks > 1:
            line.append(f"({ev.chunks} chunks) ", style="dim")
        line.append(escape(ev.data))
    r.out.print(line)


@HANDLERS.on(IncompleteMessage)
def _incomplete(r: HumanRenderer, ev: IncompleteMessage) -> None:
    line = Text()
    line.append(_clock(ev.time) + " ", style="dim")
    line.append(ev.peer, style="cyan")
    missing = ", ".join(str(i) for i in ev.missing[:10]) + (", ..." if len(ev.missing) > 10 else "")
    line.append(
        f" incomplete: {ev.received} of {ev.total} chunks ({ev.reason}; missing {missing}) ",
        style="bold yellow",
    )
    line.append(escape(ev.data))
    r.out.print(line)


@HANDLERS.on(Spewed)
def _spewed(r: HumanRenderer, ev: Spewed) -> None:
    what = "chunk" if ev.chunks == 1 else "chunks"
    r.status(
        Text(
            f"sent {ev.bytes} bytes in {ev.chunks} {what} ({ev.datagram_bytes} on the wire) "
            f"to {ev.peer}",
            style="dim",
        )
    )

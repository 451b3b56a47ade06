"""Human output for the datagram services: udp-echo and creosote.

Every payload goes through :func:`escape` into a ``Text`` object: no markup
parsing, no terminal sequence from the network ever reaches the terminal.
"""

from __future__ import annotations

from rich.text import Text

from netkit.events import Datagram, IncompleteMessage, Message, Reply, Spewed
from netkit.protocols import syslog
from netkit.protocols.text import escape, truncate
from netkit.render.human import HumanRenderer, handles

_LOG_PAYLOAD = 400  # characters of payload in a udp-echo serve log line


@handles(Datagram)
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


@handles(Reply)
def _reply(r: HumanRenderer, ev: Reply) -> None:
    r.out.print(Text(escape(ev.data)))
    # the reply alone on stdout (scripts read it); for a person at a terminal,
    # where it came from and how fast on stderr (--json has rtt_ms for scripts)
    if r.err.is_terminal:
        tries = f" (try {ev.tries})" if ev.tries > 1 else ""
        r.err.print(Text(f"{ev.size} B from {ev.peer} in {ev.rtt_ms:g} ms{tries}", style="dim"))


def _clock(iso: str) -> str:
    # "2026-11-25T18:49:08.499+00:00" -> "18:49:08"
    return iso[11:19] if len(iso) >= 19 else iso


@handles(Message)
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


@handles(IncompleteMessage)
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


@handles(Spewed)
def _spewed(r: HumanRenderer, ev: Spewed) -> None:
    what = "chunk" if ev.chunks == 1 else "chunks"
    r.status(
        Text(
            f"sent {ev.bytes} bytes in {ev.chunks} {what} ({ev.datagram_bytes} on the wire) "
            f"to {ev.peer}",
            style="dim",
        )
    )

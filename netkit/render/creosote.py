"""Human output for creosote: one line per message, syslog fields picked out.

Every payload goes through :func:`escape` into a ``Text`` object: no markup
parsing, no terminal sequence from the network ever reaches the terminal.
The listener's output is rich's; what spew sent is
:mod:`netkit.render.creosote_spew` (its own family, written without rich).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.creosote import IncompleteMessage, Message, RecordRefused
from netkit.protocols import syslog
from netkit.protocols.text import escape
from netkit.render.lite import RECEIVED, Handlers, LineHandlers

if TYPE_CHECKING:
    from rich.text import Text

    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


def _clock(iso: str) -> str:
    # "2026-11-25T18:49:08.499+00:00" -> "18:49:08"
    return iso[11:19] if len(iso) >= 19 else iso


_INDENT = "    "  # continuation lines of a multi-line message
_MATCH = "bold reverse"  # --grep matches on a terminal


def level_style(levelno: int | None) -> str:
    """Error and above stand out; warnings are yellow; debug is dim."""
    if levelno is None:
        return ""
    if levelno >= 40:
        return "bold red"
    if levelno >= 30:
        return "yellow"
    if levelno >= 25:
        return "bold"
    return "dim" if levelno < 20 else ""


def message_lines(
    text: str, spans: tuple[tuple[int, int], ...] = (), style: str = ""
) -> list[Text]:
    """*text* as its lines, each escaped on its own; *spans* (of *text*) highlighted.

    *style* colours the first line (the level's colour); the others are plain.

    A final newline does not make an empty last line; ``\r\n`` counts as one break.
    """
    from rich.text import Text

    if text.endswith("\n"):
        text = text[:-1]
    out: list[Text] = []
    pos = 0
    for raw in text.split("\n"):
        end = pos + len(raw)
        body = raw[:-1] if raw.endswith("\r") else raw
        line = Text()
        cursor = pos
        for first, last in spans:
            first, last = max(first, pos), min(last, pos + len(body))
            if first >= last or first < cursor:
                continue
            line.append(escape(text[cursor:first]), style=style)
            line.append(escape(text[first:last]), style=_MATCH)
            cursor = last
        line.append(escape(text[cursor : pos + len(body)]), style=style)
        out.append(line)
        pos = end + 1
        style = ""  # the level's colour marks the first line; the rest stays readable
    return out


def _print_lines(r: HumanRenderer, head: Text, lines: list[Text]) -> None:
    from rich.text import Text

    head.append_text(lines[0])
    r.out.print(head)
    for line in lines[1:]:
        r.out.print(Text(_INDENT).append_text(line))


@HANDLERS.on(Message)
def _message(r: HumanRenderer, ev: Message) -> None:
    from rich.text import Text

    line = Text()
    line.append(_clock(ev.time) + " ", style="dim")
    line.append(ev.peer, style="cyan")
    line.append(" ")
    sl = ev.syslog
    body = ev.data
    style = level_style(ev.levelno)
    if sl is not None:
        level = f"{sl['facility']}.{sl['severity']}"
        line.append(level, style=style or "magenta")
        who = " ".join(escape(str(sl[k])) for k in ("host", "app") if sl.get(k))
        if sl.get("procid"):
            who += f"[{escape(str(sl['procid']))}]"
        if who:
            line.append(f" {who}:", style="bold")
        line.append(" ")
        parsed = syslog.parse(ev.data)  # the message part as bytes, escaped like any payload
        body = parsed.message if parsed is not None else ev.data
    else:
        if ev.level is not None:
            line.append(ev.level.upper(), style=style or "bold")
            line.append(" ")
        if ev.logger:
            line.append(f"{escape(ev.logger)}: ", style="bold")
        if ev.chunks > 1:
            what = "pieces" if ev.dialect == "spew" else "chunks"
            line.append(f"({ev.chunks} {what}) ", style="dim")
    lost = (ev.fields or {}).get("dropped")
    if isinstance(lost, int) and lost > 0:  # CreosoteHandler: records it could not deliver
        line.append(f"[{lost} records lost so far] ", style="yellow")
    text = body.decode("utf-8", "surrogateescape")
    _print_lines(r, line, message_lines(text, ev.highlight, style if style != "dim" else ""))
    r.hexdump(ev.data, RECEIVED, stderr=False)  # messages are the results: stdout


@HANDLERS.on(IncompleteMessage)
def _incomplete(r: HumanRenderer, ev: IncompleteMessage) -> None:
    from rich.text import Text

    line = Text()
    line.append(_clock(ev.time) + " ", style="dim")
    line.append(ev.peer, style="cyan")
    ranges = ev.missing_ranges or []
    if ranges:
        missing = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges[:10])
        if len(ranges) > 10 or len(ev.missing_ranges or []) >= 32:
            missing += ", ..."
    else:
        missing = ", ".join(str(i) for i in ev.missing[:10])
        missing += ", ..." if len(ev.missing) > 10 else ""
    kind = "" if ev.dialect == "netkit" else f" {ev.dialect}"
    line.append(
        f" incomplete{kind}: {ev.received} of {ev.total} chunks ({ev.reason}; missing {missing}) ",
        style="bold yellow",
    )
    _print_lines(r, line, message_lines(ev.data.decode("utf-8", "surrogateescape")))


@HANDLERS.on(RecordRefused)
def _refused(r: HumanRenderer, ev: RecordRefused) -> None:
    from rich.text import Text

    more = f" (+{ev.more} more since the last report)" if ev.more else ""
    r.status(
        Text(
            f"{_clock(ev.time)} {ev.peer} refused {ev.dialect} record: {escape(ev.reason)}{more}",
            style="yellow",
        )
    )

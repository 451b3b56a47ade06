"""Human output for tcp-time: the time read (stdout), a log line per answer (stderr).

The client's result is a line handler (:mod:`netkit.render.lite`): written
without loading rich; the server's log lines are rich's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.tcp_time import TimeReceived, TimeSent
from netkit.protocols.text import escape
from netkit.render.lite import RECEIVED, SENT, Handlers, Line, LineHandlers, Lines, View

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


@HANDLERS.on(TimeSent)
def _time_sent(r: HumanRenderer, ev: TimeSent) -> None:
    from rich.text import Text

    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" {ev.transport} {ev.protocol}: "),
        Text(escape(ev.value), style="bold"),
    )
    r.hexdump(ev.wire, SENT)


@LINES.on(TimeReceived)
def time_received_lines(r: View, ev: TimeReceived) -> Lines:
    if ev.protocol == "time":
        note = f"RFC 868 value {ev.rfc868} from {ev.server} ({ev.transport})"
    else:
        note = f"daytime from {ev.server} ({ev.transport}); {ev.zone}"
    if ev.offset_seconds is not None:
        sign = "+" if ev.offset_seconds >= 0 else "-"
        note += f"; offset {sign}{abs(ev.offset_seconds):g} s"
        if ev.offset_bound_seconds is not None:
            note += f" ± {ev.offset_bound_seconds} s (whole seconds)"
        note += " from the local clock"
    return [
        ("out", Line(escape(ev.text), style="bold")),
        ("err", Line(escape(note), style="dim")),
    ]


@HANDLERS.on(TimeReceived)
def _time_received(r: HumanRenderer, ev: TimeReceived) -> None:
    r.print_lines(time_received_lines(r, ev))
    r.hexdump(ev.request_wire, SENT, stderr=False)
    r.hexdump(ev.wire, RECEIVED, stderr=False)

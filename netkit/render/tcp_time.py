"""Human output for tcp-time: the time read (stdout), a log line per answer (stderr)."""

from __future__ import annotations

from rich.text import Text

from netkit.events.tcp_time import TimeReceived, TimeSent
from netkit.protocols.text import escape
from netkit.render.human import RECEIVED, SENT, Handlers, HumanRenderer

HANDLERS = Handlers()


@HANDLERS.on(TimeSent)
def _time_sent(r: HumanRenderer, ev: TimeSent) -> None:
    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" {ev.transport} {ev.protocol}: "),
        Text(escape(ev.value), style="bold"),
    )
    r.hexdump(ev.wire, SENT)


@HANDLERS.on(TimeReceived)
def _time_received(r: HumanRenderer, ev: TimeReceived) -> None:
    r.out.print(Text(escape(ev.text), style="bold"))
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
    r.err.print(Text(escape(note), style="dim"))
    r.hexdump(ev.request_wire, SENT, stderr=False)
    r.hexdump(ev.wire, RECEIVED, stderr=False)

"""Human output for the stream services: tcp-time and upper-server.

Every byte that came from the network goes through ``escape()`` into a
``Text`` object: nothing here parses markup or lets a terminal escape out.
"""

from __future__ import annotations

from rich.text import Text

from netkit.events import (
    ClientWaiting,
    Connected,
    Datagram,
    Disconnected,
    LineEvent,
    Rejected,
    Reply,
    TimeReceived,
    TimeSent,
)
from netkit.protocols.text import escape, truncate
from netkit.render.human import HumanRenderer, handles

SHOW = 120  # characters of a line shown in the log


def _counts(open_: int, total: int) -> Text:
    return Text(f"  [open {open_}, total {total}]", style="dim")


@handles(TimeSent)
def _time_sent(r: HumanRenderer, ev: TimeSent) -> None:
    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" {ev.transport} {ev.protocol}: "),
        Text(escape(ev.value), style="bold"),
    )


@handles(TimeReceived)
def _time_received(r: HumanRenderer, ev: TimeReceived) -> None:
    r.out.print(Text(escape(ev.text), style="bold"))
    if ev.protocol == "time":
        note = f"RFC 868 value {ev.rfc868} from {ev.server} ({ev.transport})"
    else:
        note = f"daytime from {ev.server} ({ev.transport}); {ev.zone}"
    if ev.offset_seconds is not None:
        sign = "+" if ev.offset_seconds >= 0 else "-"
        note += f"; offset {sign}{abs(ev.offset_seconds):g} s from the local clock"
    r.err.print(Text(escape(note), style="dim"))


@handles(Connected)
def _connected(r: HumanRenderer, ev: Connected) -> None:
    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(" connected", style="green"),
        _counts(ev.open, ev.total),
    )


@handles(ClientWaiting)
def _waiting(r: HumanRenderer, ev: ClientWaiting) -> None:
    if r.quiet:
        return
    serving = f" while {escape(ev.serving)} is served" if ev.serving else ""
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(
            f" waits (sync mode serves one client at a time){serving}; {ev.queued} waiting",
            style="yellow",
        ),
    )


@handles(LineEvent)
def _line(r: HumanRenderer, ev: LineEvent) -> None:
    if r.quiet:
        return
    shown = truncate(escape(ev.data), SHOW)
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(" > "),
        Text(shown),
        Text(f"  ({ev.length} bytes)" if ev.length > SHOW else "", style="dim"),
    )


@handles(Disconnected)
def _disconnected(r: HumanRenderer, ev: Disconnected) -> None:
    if r.quiet:
        return
    style = "yellow" if ev.reason in ("line too long", "idle timeout", "reset") else ""
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" disconnected ({ev.reason})", style=style),
        Text(f": {ev.lines} line{'s' if ev.lines != 1 else ''} in {ev.duration:.3f} s"),
        _counts(ev.open, ev.total),
    )


@handles(Rejected)
def _rejected(r: HumanRenderer, ev: Rejected) -> None:
    r.log(
        Text(escape(ev.peer), style="cyan"), Text(f" rejected: {escape(ev.reason)}", style="yellow")
    )


@handles(Datagram)
def _datagram(r: HumanRenderer, ev: Datagram) -> None:
    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"), Text(" udp > "), Text(truncate(escape(ev.data), SHOW))
    )


@handles(Reply)
def _reply(r: HumanRenderer, ev: Reply) -> None:
    r.out.print(Text(escape(ev.data)))

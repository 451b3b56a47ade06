"""Human output for upper-server: a log line per connection and line, a live summary.

Every byte that came from the network goes through ``escape()`` into a
``Text`` object: nothing here parses markup or lets a terminal escape out.
The server's output is rich's; the client's reply is
:mod:`netkit.render.upper_client`'s.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from netkit.events.upper_server import (
    ClientWaiting,
    Connected,
    Disconnected,
    LineEvent,
    Rejected,
    UpperDatagram,
)
from netkit.protocols.text import escape, truncate
from netkit.render.lite import RECEIVED, SENT, Handlers

if TYPE_CHECKING:
    from rich.text import Text

    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
SHOW = 120  # characters of a line shown in the log


class LiveSummary:
    """The bottom line on a terminal: connections open / total and lines so far.

    Only when stderr is a terminal (log lines scroll above it); it goes away
    before the final summary.  ``--quiet`` servers emit no per-connection
    events, so there is nothing to show and nothing is spent on it.  rich
    redraws it on a timer (REFRESH times a second, in its own thread), so
    what it shows is never older than that, however quiet the server is,
    and an event only sets the numbers (a busy server spends nothing on
    drawing); stopping draws it once more with the final numbers.
    """

    REFRESH = 5  # redraws a second

    def __init__(self, r: HumanRenderer) -> None:
        from rich.live import Live

        self.open = 0
        self.total = 0
        self.lines = 0
        self._lock = threading.Lock()
        self.live = Live(
            self.text(),
            console=r.err,
            auto_refresh=True,
            refresh_per_second=self.REFRESH,
            transient=True,
        )
        self.live.start()

    def text(self) -> Text:
        from rich.text import Text

        return Text(
            f"open {self.open}, total {self.total}, lines {self.lines}", style="bold magenta"
        )

    def update(self, *, open_: int | None = None, total: int | None = None, lines: int = 0) -> None:
        with self._lock:
            if open_ is not None:
                self.open = open_
            if total is not None:
                self.total = total
            self.lines += lines
            self.live.update(self.text(), refresh=False)

    def stop(self) -> None:
        self.live.stop()


#: disconnect reasons shown as warnings
WARN_REASONS = ("line too long", "idle timeout", "line timeout", "reset")


def _live(r: HumanRenderer) -> LiveSummary | None:
    if r.quiet or not r.err.is_terminal:
        return None
    if not isinstance(r.live, LiveSummary):
        r.live = LiveSummary(r)  # stopped by the summary (netkit.render.human)
    return r.live


def _counts(open_: int, total: int) -> Text:
    from rich.text import Text

    return Text(f"  [open {open_}, total {total}]", style="dim")


@HANDLERS.on(Connected)
def _connected(r: HumanRenderer, ev: Connected) -> None:
    from rich.text import Text

    if r.quiet:
        return
    live = _live(r)
    if live is not None:
        live.update(open_=ev.open, total=ev.total)
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(" connected", style="green"),
        Text(f" ({escape(ev.worker)})" if ev.worker else "", style="dim"),
        _counts(ev.open, ev.total),
    )


@HANDLERS.on(ClientWaiting)
def _waiting(r: HumanRenderer, ev: ClientWaiting) -> None:
    from rich.text import Text

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


@HANDLERS.on(LineEvent)
def _line(r: HumanRenderer, ev: LineEvent) -> None:
    from rich.text import Text

    if r.quiet:
        return
    live = _live(r)
    if live is not None:
        live.update(lines=1)
    shown = truncate(escape(ev.data), SHOW)
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(" > "),
        Text(shown),
        Text(f"  ({ev.length} bytes)" if ev.length > SHOW else "", style="dim"),
    )
    r.hexdump(ev.data, RECEIVED)


@HANDLERS.on(Disconnected)
def _disconnected(r: HumanRenderer, ev: Disconnected) -> None:
    from rich.text import Text

    if r.quiet:
        return
    live = _live(r)
    if live is not None:
        live.update(open_=ev.open, total=ev.total)
    style = "yellow" if ev.reason in WARN_REASONS else ""
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" disconnected ({ev.reason})", style=style),
        Text(f": {ev.lines} line{'s' if ev.lines != 1 else ''} in {ev.duration:.3f} s"),
        _counts(ev.open, ev.total),
    )


@HANDLERS.on(Rejected)
def _rejected(r: HumanRenderer, ev: Rejected) -> None:
    from rich.text import Text

    r.log(
        Text(escape(ev.peer), style="cyan"), Text(f" rejected: {escape(ev.reason)}", style="yellow")
    )


@HANDLERS.on(UpperDatagram)
def _datagram(r: HumanRenderer, ev: UpperDatagram) -> None:
    from rich.text import Text

    if r.quiet:
        return
    r.log(
        Text(escape(ev.peer), style="cyan"), Text(" udp > "), Text(truncate(escape(ev.data), SHOW))
    )
    r.hexdump(ev.data, RECEIVED)
    r.hexdump(ev.reply_wire, SENT)

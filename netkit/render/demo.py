"""Rich output for ``netkit demo``: a rule per exercise, one line per step, claims, a table."""

from __future__ import annotations

from rich.live import Live
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from netkit.events.demo import DemoClaim, DemoProgress, DemoSection, DemoStep, DemoTable
from netkit.protocols.text import escape
from netkit.render.human import Handlers, HumanRenderer, print_hanging

HANDLERS = Handlers()


@HANDLERS.on(DemoSection)
def _section(r: HumanRenderer, ev: DemoSection) -> None:
    title = f"Exercise {ev.exercise}: {ev.title}" if ev.exercise.isdigit() else ev.title
    r.out.print()
    r.out.print(Rule(Text(title, style="bold"), align="left", style="cyan"))
    print_hanging(r.out, Text("Q: ", style="italic"), Text(escape(ev.question), style="italic"))


@HANDLERS.on(DemoStep)
def _step(r: HumanRenderer, ev: DemoStep) -> None:
    line = Text("  ")
    line.append(f"{escape(ev.actor):>8}", style="bold cyan")
    line.append("  ")
    print_hanging(r.out, line, Text(escape(ev.what)))


@HANDLERS.on(DemoClaim)
def _claim(r: HumanRenderer, ev: DemoClaim) -> None:
    mark, style = ("✓", "bold green") if ev.holds else ("✗", "bold red")
    line = Text("  ")
    line.append(f"{mark} ", style=style)
    body = Text(escape(ev.claim), style="" if ev.holds else "red")
    if ev.evidence:
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ev.evidence.items())
        body.append(f"  ({escape(shown)})", style="dim")
    print_hanging(r.out, line, body)


@HANDLERS.on(DemoTable)
def _table(r: HumanRenderer, ev: DemoTable) -> None:
    table = Table(title=escape(ev.title), title_justify="left", caption=escape(ev.note))
    for i, column in enumerate(ev.columns):
        # as wide as the header's longest word: a header wraps, never loses letters
        widest = max((len(word) for word in column.split()), default=1)
        table.add_column(escape(column), justify="left" if i == 0 else "right", min_width=widest)
    for row in ev.rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else escape(str(v)) for v in row))
    r.out.print(table)


class _ProgressLine:
    """A transient line at the bottom of stderr, redrawn by rich a few times a second."""

    def __init__(self, r: HumanRenderer) -> None:
        self.live = Live(Text(""), console=r.err, refresh_per_second=4, transient=True)
        self.live.start()

    def update(self, ev: DemoProgress) -> None:
        width = 20
        filled = round(max(0.0, min(ev.fraction, 1.0)) * width)
        bar = "#" * filled + "." * (width - filled)
        self.live.update(Text(f"  {escape(ev.what)} [{bar}] {ev.fraction:.0%}", style="dim"))

    def stop(self) -> None:
        self.live.stop()


@HANDLERS.on(DemoProgress)
def _progress(r: HumanRenderer, ev: DemoProgress) -> None:
    if not r.err.is_terminal:  # nothing animated in a pipe
        return
    if ev.done:
        if r.live is not None:
            r.live.stop()
            r.live = None
        return
    if not isinstance(r.live, _ProgressLine):
        r.live = _ProgressLine(r)
    r.live.update(ev)

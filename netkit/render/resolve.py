"""Human output for resolve: what a lookup found, aligned.

A line handler (:mod:`netkit.render.lite`): written without loading rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netkit.events.resolve import Resolved
from netkit.protocols.text import escape
from netkit.render.lite import Handlers, LineHandlers, Lines, Rows, View

if TYPE_CHECKING:
    from netkit.render.human import HumanRenderer

HANDLERS = Handlers()
LINES = LineHandlers()


@LINES.on(Resolved)
def resolved_lines(r: View, ev: Resolved) -> Lines:
    grid = Rows()
    grid.add_row("query", escape(ev.query), f"{ev.kind} lookup via {ev.source}")
    grid.add_row("canonical", escape(ev.canonical) or "-", "")
    grid.add_row("aliases", ", ".join(escape(a) for a in ev.aliases) or "-", "")
    from netkit.protocols.dnsstatus import describe_status

    def got(rtype: str) -> str:
        # with --server: say what a query type got when it was not an answer
        status = ev.status.get(rtype)
        return "" if status in (None, "answer") else f"{rtype}: {describe_status(status)}"

    asked_addresses = not ev.status or bool({"A", "AAAA"} & ev.status.keys())
    if asked_addresses and (ev.kind == "forward" or ev.ipv4 or ev.ipv6):
        grid.add_row("IPv4", ", ".join(escape(a) for a in ev.ipv4) or "-", got("A"))
        grid.add_row("IPv6", ", ".join(escape(a) for a in ev.ipv6) or "-", got("AAAA"))
    for rtype in ev.status:
        if rtype not in ("A", "AAAA") and got(rtype):
            grid.add_row(rtype, "-", got(rtype))
    for rec in ev.records:
        kind = str(rec.get("type"))
        if kind in ("A", "AAAA"):
            continue
        value = escape(str(rec.get("value")))
        if kind == "CNAME":  # the alias and where it points
            value = f"{escape(str(rec.get('name')))} -> {value}"
        grid.add_row(kind, value, f"ttl {rec.get('ttl')}")
    if ev.fqdn:
        grid.add_row("fqdn", escape(ev.fqdn), "getfqdn()")
    return [("out", line) for line in grid.lines()]


@HANDLERS.on(Resolved)
def _resolved(r: HumanRenderer, ev: Resolved) -> None:
    r.print_lines(resolved_lines(r, ev))

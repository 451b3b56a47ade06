"""Human output for resolve: what a lookup found, aligned."""

from __future__ import annotations

from netkit.events.resolve import Resolved
from netkit.protocols.text import escape
from netkit.render.human import Handlers, HumanRenderer, Rows

HANDLERS = Handlers()


@HANDLERS.on(Resolved)
def _resolved(r: HumanRenderer, ev: Resolved) -> None:
    grid = Rows()
    grid.add_row("query", escape(ev.query), f"{ev.kind} lookup via {ev.source}")
    grid.add_row("canonical", escape(ev.canonical) or "-", "")
    grid.add_row("aliases", ", ".join(escape(a) for a in ev.aliases) or "-", "")
    if ev.kind == "forward" or ev.ipv4 or ev.ipv6:
        grid.add_row("IPv4", ", ".join(escape(a) for a in ev.ipv4) or "-", "")
        grid.add_row("IPv6", ", ".join(escape(a) for a in ev.ipv6) or "-", "")
    for rec in ev.records:
        if rec.get("type") in ("A", "AAAA", "CNAME"):
            continue
        grid.add_row(str(rec.get("type")), escape(str(rec.get("value"))), f"ttl {rec.get('ttl')}")
    if ev.fqdn:
        grid.add_row("fqdn", escape(ev.fqdn), "getfqdn()")
    grid.print(r.out)

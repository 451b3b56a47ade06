"""Human output for SNTP (client and server) and tcp-time encode."""

from __future__ import annotations

import time

from rich.text import Text

from netkit.events.sntp import SntpDropped, SntpServed, SntpTime, TimeEncoded
from netkit.protocols.text import escape
from netkit.render.human import Handlers, HumanRenderer, Rows

HANDLERS = Handlers()

#: what the leap indicator says (RFC 5905)
LEAP_TEXT = {
    0: "no warning",
    1: "last minute of the day has 61 seconds",
    2: "last minute of the day has 59 seconds",
    3: "unsynchronised",
}


def _stamp(unix: float | None) -> str:
    if unix is None:
        return "0"
    return time.strftime("%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1e6):06d}"


@HANDLERS.on(SntpTime)
def _sntp_time(r: HumanRenderer, ev: SntpTime) -> None:
    r.out.print(
        Text.assemble(
            (escape(ev.text), "bold"),
            f"  offset {ev.offset_seconds:+.6f} ± {ev.root_distance:.6f} s",
        )
    )
    leap = LEAP_TEXT.get(ev.leap, str(ev.leap))
    best = f", lowest delay of {ev.samples} samples" if ev.samples > 1 else ""
    note = (
        f"sntp from {ev.server}: stratum {ev.stratum}, refid {ev.refid}, leap {ev.leap} ({leap}), "
        f"delay {ev.delay_seconds:.6f} s, NTPv{ev.version}{best}; ± is the root distance"
    )
    r.err.print(Text(escape(note), style="dim"))


@HANDLERS.on(SntpServed)
def _sntp_served(r: HumanRenderer, ev: SntpServed) -> None:
    if r.quiet:
        return
    what = "kiss-o'-death RATE" if ev.kind == "kod" else f"stratum {ev.stratum} refid {ev.refid}"
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(
            f" udp sntp: {escape(what)}, leap {ev.leap}: ",
            style="yellow" if ev.kind == "kod" else "",
        ),
        Text(
            f"ref {_stamp(ev.reference)} org {ev.originate} "
            f"rec {_stamp(ev.receive)} xmt {_stamp(ev.transmit)}",
            style="bold",
        ),
    )


@HANDLERS.on(SntpDropped)
def _sntp_dropped(r: HumanRenderer, ev: SntpDropped) -> None:
    if r.quiet:
        return
    more = f" (+{ev.unlogged_drops} more not shown)" if ev.unlogged_drops else ""
    r.log(
        Text(escape(ev.peer), style="cyan"),
        Text(f" udp sntp: {ev.size} bytes not answered: {escape(ev.detail)}{more}", style="yellow"),
    )


@HANDLERS.on(TimeEncoded)
def _encoded(r: HumanRenderer, ev: TimeEncoded) -> None:
    r.out.print(Text(ev.iso, style="bold"))
    grid = Rows()
    grid.add_row("unix", f"{ev.unix:.6f}".rstrip("0").rstrip("."), "seconds since 1970-01-01 UTC")
    t32 = ev.time_t32
    if t32["value"] is None:
        grid.add_row("time_t (32 bit)", "does not fit", f"signed 32-bit time_t ends {t32['wraps']}")
    else:
        grid.add_row("time_t (32 bit)", t32["bytes"], f"signed, wraps {t32['wraps']}")
    grid.add_row(
        "RFC 867", ev.rfc867 or "-", "daytime text as netkit serves it (ctime, local time)"
    )
    rfc868 = ev.rfc868
    grid.add_row(
        "RFC 868",
        f"{rfc868['value']}  ({rfc868['bytes']})",
        f"32-bit seconds since 1900, network order; era {rfc868['era']}, wraps {rfc868['wraps']}",
    )
    n = ev.ntp
    grid.add_row(
        "NTP",
        f"{n['seconds']} + {n['fraction']}/2^32  ({n['bytes']})",
        f"seconds and 2^-32 fraction ({n['fraction_seconds']:.9f} s); era {n['era']}, "
        f"next era {n['next_era']}",
    )
    grid.print(r.out)

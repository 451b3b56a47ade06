"""Human rendering of the stream events: escaped text, and the live summary on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from netkit.events import Summary
from netkit.events.tcp_time import TimeReceived
from netkit.events.upper_server import Connected, Disconnected, LineEvent, LineReply
from netkit.render.human import HumanRenderer


def renderer(terminal: bool) -> tuple[HumanRenderer, io.StringIO, io.StringIO]:
    r = HumanRenderer(no_color=True)
    out, err = io.StringIO(), io.StringIO()
    r.out = Console(file=out, force_terminal=terminal, width=200, markup=False, highlight=False)
    r.err = Console(file=err, force_terminal=terminal, width=200, markup=False, highlight=False)
    return r, out, err


def test_live_summary_on_a_terminal_goes_before_the_final_summary() -> None:
    r, _out, err = renderer(terminal=True)
    r(Connected("127.0.0.1:1", 1, 1))
    r(LineEvent("127.0.0.1:1", b"[red]x\x1b[0m", 9))
    r(Disconnected("127.0.0.1:1", 1, 0.5, "eof", 0, 1))
    r(Summary({"connections": 1}, "stopped by SIGINT"))
    text = err.getvalue()
    assert "open 1, total 1" in text
    assert "[red]x\\x1b[0m" in text  # escaped, never markup
    # the live line is taken away (cursor shown again) before the summary
    assert text.rindex("\x1b[?25h") < text.index("stopped by SIGINT: connections 1")
    assert "stopped by SIGINT: connections 1" in text.splitlines()[-1]


def test_no_live_summary_when_not_a_terminal() -> None:
    r, _out, err = renderer(terminal=False)
    r(Connected("127.0.0.1:1", 1, 1))
    r(Summary({"connections": 1}, "stopped"))
    assert "lines 0" not in err.getvalue()


def test_client_results() -> None:
    r, out, err = renderer(terminal=False)
    r(LineReply(sent="a", data=b"A\x07", server="127.0.0.1:2345"))
    r(
        TimeReceived(
            protocol="daytime",
            unix=0,
            text="Thu Jan  1 00:00:00 1970\x1b",
            offset_seconds=-1.5,
            server="127.0.0.1:13",
            transport="tcp",
            zone="no zone given: read as local time",
        )
    )
    assert out.getvalue().splitlines() == ["A\\x07", "Thu Jan  1 00:00:00 1970\\x1b"]
    assert "offset -1.5 s" in err.getvalue() and "local time" in err.getvalue()

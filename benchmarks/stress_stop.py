"""Stop under load, again and again: SIGINT with 100 idle connections, every mode.

    python benchmarks/stress_stop.py [--runs 50] [--mode fork ...]

For each upper-server mode (sync, thread, fork, prefork, async on uvloop,
async on asyncio), starts the real ``netkit upper-server serve`` *runs*
times in a row; each time it opens 100 silent connections, waits until the
server has accepted them all, sends SIGINT and counts a run as good when
the server exits 0 within 5 s, with a ``stopped by SIGINT`` summary and no
traceback (the tests bound it at 2 s: how many took longer is printed too).
Prints the count per mode.  A stress script, not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import PORT_0_JSON, Server
from tests.reliability.proc_util import close_all, open_idle

IDLE = 100
MODES = {
    "sync": ["--mode", "sync"],
    "thread": ["--mode", "thread"],
    "fork": ["--mode", "fork"],
    "prefork": ["--mode", "fork", "--prefork", "4"],
    "async": ["--mode", "async"],
    "async-asyncio": ["--mode", "async", "--loop", "asyncio"],
}


def one_run(args: list[str]) -> tuple[bool, float, str]:
    with Server("upper-server", "serve", *args, *PORT_0_JSON, collect=True) as srv:
        socks = open_idle(srv.port, IDLE)
        try:
            want = int(args[args.index("--prefork") + 1]) if "--prefork" in args else IDLE
            kinds = ("connect", "waiting")
            srv.wait_for(lambda evs: sum(e["event"] in kinds for e in evs) >= want, 20, "accepted")
            code, _out, _err = srv.stop(signal.SIGINT, timeout=5)
            took = srv.took
        finally:
            close_all(socks)
        summaries = srv.of("summary")
        reason = str(summaries[-1]["reason"]) if summaries else "no summary"
        good = code == 0 and reason == "stopped by SIGINT" and b"Traceback" not in srv.stderr
        return good, took, f"exit {code}, {reason}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: all")
    opts = parser.parse_args()
    print(f"SIGINT with {IDLE} idle connections, {opts.runs} runs in a row per mode", flush=True)
    for name in opts.mode or list(MODES):
        good = slow = 0
        worst = 0.0
        bad: list[str] = []
        started = time.monotonic()
        for _ in range(opts.runs):
            try:
                ok, took, why = one_run(MODES[name])
            except Exception as exc:  # a run that did not even get going is a failed run
                ok, took, why = False, 0.0, f"{type(exc).__name__}: {exc}"
            good += ok
            slow += took > 2.0
            worst = max(worst, took)
            if not ok:
                bad.append(why)
        print(
            f"{name:14} {good}/{opts.runs} stopped cleanly within 5 s; slowest {worst:.2f} s; "
            f"{slow} over 2 s; {time.monotonic() - started:.0f} s in all"
            + (f"; failures: {sorted(set(bad))}" if bad else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()

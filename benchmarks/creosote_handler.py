"""What a ``log.error(...)`` costs the program with CreosoteHandler, side by side.

    python benchmarks/creosote_handler.py [--calls 10000]

Times each call of ``log.error("step %d failed", i)`` with three handlers
in turn: ``logging.NullHandler`` (the reference), CreosoteHandler pointed
at a port where nothing listens, and CreosoteHandler pointed at a name
that does not resolve (``nosuch.invalid``).  Prints p50 / p99 / max per
call and the p99 ratio to the reference; the goal is a p99 under 1 ms in
both failure cases (the handler never waits for the network).
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import time
from collections.abc import Callable

from netkit.creosote import CreosoteHandler


def measure(handler: logging.Handler, calls: int) -> list[float]:
    log = logging.getLogger(f"bench-{id(handler)}")
    log.propagate = False
    log.addHandler(handler)
    out = []
    try:
        for i in range(calls):
            start = time.perf_counter()
            log.error("step %d failed", i)
            out.append(time.perf_counter() - start)
    finally:
        log.removeHandler(handler)
        handler.close()
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    cases: list[tuple[str, Callable[[], logging.Handler]]] = [
        ("NullHandler (reference)", lambda: logging.NullHandler()),
        ("CreosoteHandler, nothing listening", lambda: CreosoteHandler("127.0.0.1", closed_port)),
        ("CreosoteHandler, unresolvable host", lambda: CreosoteHandler("nosuch.invalid", 7739)),
    ]
    reference = None
    for name, make in cases:
        handler = make()
        times = measure(handler, args.calls)
        p50 = statistics.median(times) * 1e6
        p99 = times[int(len(times) * 0.99) - 1] * 1e6
        ratio = "" if reference is None else f"  p99 {p99 / reference:.1f}x the reference"
        dropped = getattr(handler, "dropped", None)
        lost = "" if dropped is None else f"  (dropped {dropped})"
        print(
            f"{name:40} p50 {p50:7.1f} us  p99 {p99:7.1f} us  max {times[-1] * 1e6:8.1f} us"
            f"{ratio}{lost}"
        )
        reference = reference or p99
        if dropped is not None:
            print(f"{'':40} p99 under 1 ms: {'yes' if p99 < 1000 else 'NO'}")


if __name__ == "__main__":
    main()

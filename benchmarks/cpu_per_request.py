"""Server CPU time per request: netkit's async rows, their floors and the C reference.

    python benchmarks/cpu_per_request.py [--rounds 3] [--count 300000] [--rows ...]

For each row (``loadgen tcp_rr``, 64-byte requests) it runs the C
reference, ``upper-server --mode async`` and the floor of its design
(benchmarks/floors/bare_protocol.py) one after the other, each for a
fixed number of requests after a warm-up, server pinned to CPU 1 and
loadgen to CPU 0, and reads the server's user and system CPU time from
``/proc/PID/stat`` before and after.  It prints microseconds per request
(medians over the rounds) and C's total over each server's: the ratio a
server whose CPU is the bottleneck gets in benchmarks/tcp.py.

Why: transactions a second on a small shared machine move by tens of per
cent between runs, CPU time per request by a few; and it splits what the
kernel does (the same system calls for every server) from what the
server's own code does.  A goal a server's CPU cannot reach even with
nothing but the floor's user time shows here as a floor below the goal.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcp import FLOORS_DIR, LOAD_CPU, NETKIT, Run, build, free_port, pinned

from tests.proc import CLK_TCK, stat_fields

WARM_UP = 5000


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process *pid* so far."""
    fields = stat_fields(pid)
    assert fields is not None, f"server {pid} is gone"
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def per_request(argv: list[str], loadgen: Path, clients: int, count: int) -> tuple[float, float]:
    """(user, system) microseconds of the server's CPU per request over *count* requests."""
    port = free_port()
    server = Run([*argv, str(port)], port)
    try:
        run = [str(loadgen), "tcp_rr", "-p", str(port), "-c", str(clients), "-s", "64", "-w", "0"]
        subprocess.run(
            pinned(LOAD_CPU, [*run, "-d", "60", "-n", str(WARM_UP)]),
            check=True,
            capture_output=True,
        )
        user0, sys0 = cpu_seconds(server.proc.pid)
        done = subprocess.run(
            pinned(LOAD_CPU, [*run, "-d", "300", "-n", str(count)]), check=True, capture_output=True
        )
        user1, sys1 = cpu_seconds(server.proc.pid)
    finally:
        server.stop()
    tx = int(json.loads(done.stdout.decode().strip().splitlines()[-1])["tx"])
    return (user1 - user0) / tx * 1e6, (sys1 - sys0) / tx * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server per row")
    parser.add_argument("--count", type=int, default=300_000, help="requests counted per run")
    rows = {
        "uvloop-100": ("uvloop", 100),
        "uvloop-1000": ("uvloop", 1000),
        "asyncio-100": ("asyncio", 100),
    }
    parser.add_argument("--rows", nargs="+", choices=list(rows), default=list(rows))
    opts = parser.parse_args()
    bare = [sys.executable, str(FLOORS_DIR / "bare_protocol.py")]
    upper = [*NETKIT, "upper-server", "serve", "--quiet", "--max-clients", "1100", "--mode"]
    print(
        f"server CPU per request (/proc/PID/stat), loadgen tcp_rr 64 B, {opts.count} requests "
        f"a run, median of {opts.rounds}"
    )
    print(f"{'row':13} {'server':28} {'user us':>8} {'sys us':>7} {'total':>7} {'C/total':>8}")
    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmpdir:
        loadgen, ref = build(Path(tmpdir))
        for name in opts.rows:
            loop, clients = rows[name]
            servers = [
                ("C reference", [str(ref), "tcp"]),
                (f"netkit async, {loop}", [*upper, "async", "--loop", loop, "--port"]),
                (
                    f"floor: bare Protocol, {'lean' if loop == 'asyncio' else loop}",
                    [*bare, "lean" if loop == "asyncio" else loop],
                ),
            ]
            got: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in servers}
            for _ in range(opts.rounds):  # alternate, so drift hits every server alike
                for label, argv in servers:
                    got[label].append(per_request(argv, loadgen, clients, opts.count))
            c_total = 0.0
            for label, _ in servers:
                user = statistics.median(u for u, _s in got[label])
                system = statistics.median(s for _u, s in got[label])
                total = user + system
                c_total = c_total or total
                print(
                    f"{name:13} {label:28} {user:8.2f} {system:7.2f} {total:7.2f} "
                    f"{c_total / total:7.2f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()

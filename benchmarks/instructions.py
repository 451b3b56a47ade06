"""Instruction count: what upper-server's async mode adds to a bare Protocol, per transaction.

    python benchmarks/instructions.py [--clients 100] [--count 20000]

Runs each server under valgrind's callgrind, drives it with loadgen
``tcp_rr`` (64-byte lines), zeroes the counters after a warm-up and counts
the server's user-space instructions over a fixed number of transactions,
then prints instructions per transaction and the ratio of netkit's
``--mode async`` to a bare ``asyncio.Protocol`` whose ``data_received`` only
writes ``data.upper()`` (benchmarks/floors/bare_protocol.py), on the same
event loop (uvloop, then the standard one).

Why: on a small shared machine transactions a second move by tens of per
cent between runs (benchmarks/tcp.py shows the spread), so a change of a
few per cent in the server's own work cannot be seen there.  The count of
instructions the server runs is the same from run to run within about 1 %
on uvloop and 3 % on the standard loop (whose work per wake-up depends on
how many connections are ready at once); the system calls, the same for
both servers, are not counted.  It is a
measure of work, not of time: cache misses and the kernel's share are what
benchmarks/tcp.py sees.  Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tcp import FLOORS_DIR, NETKIT, build, free_port, terminate, wait_port

WARM_UP = 5000


def count(argv: list[str], port: int, loadgen: Path, clients: int, n: int, tmp: Path) -> float:
    """The server's instructions per transaction over *n* transactions after a warm-up."""
    out = tmp / f"callgrind.{port}"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, timeout=120)  # a Python start under valgrind takes seconds
        run = [str(loadgen), "tcp_rr", "-p", str(port), "-c", str(clients), "-s", "64", "-w", "0"]
        subprocess.run([*run, "-d", "120", "-n", str(WARM_UP)], capture_output=True, check=True)
        pid = str(proc.pid)
        subprocess.run(["callgrind_control", "--zero", pid], capture_output=True, check=True)
        done = subprocess.run([*run, "-d", "300", "-n", str(n)], capture_output=True, check=True)
        subprocess.run(["callgrind_control", "--dump", pid], capture_output=True, check=True)
        tx = int(json.loads(done.stdout.decode().strip().splitlines()[-1])["tx"])
    finally:
        terminate(proc, wait=60)  # Python under valgrind exits slowly
    dump = Path(f"{out}.1")  # the dump taken right after the measured transactions
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]) / tx
    raise RuntimeError(f"no summary in {dump}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="loadgen connections")
    parser.add_argument("--count", type=int, default=20000, help="transactions counted")
    opts = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"benchmarks/instructions.py: {tool} is needed (Debian package valgrind)")
    print(
        f"server user-space instructions per transaction (callgrind), loadgen tcp_rr "
        f"c={opts.clients}, {opts.count} transactions after {WARM_UP}"
    )
    print(f"{'loop':8} {'bare Protocol':>14} {'netkit async':>13} {'netkit/bare':>12}")
    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        loadgen, _ref = build(tmp)
        bare = FLOORS_DIR / "bare_protocol.py"  # the least a server on the loop can do
        for loop in ("uvloop", "asyncio"):
            port = free_port()
            base = count(
                [sys.executable, str(bare), loop, str(port)],
                port,
                loadgen,
                opts.clients,
                opts.count,
                tmp,
            )
            port = free_port()
            serve = [*NETKIT, "upper-server", "serve", "--quiet", "--mode", "async"]
            ours = count(
                [*serve, "--loop", loop, "--port", str(port)],
                port,
                loadgen,
                opts.clients,
                opts.count,
                tmp,
            )
            print(f"{loop:8} {base:14,.0f} {ours:13,.0f} {ours / base:11.2f}x", flush=True)


if __name__ == "__main__":
    main()

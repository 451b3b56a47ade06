"""Instruction count: what netkit's servers add to the floors of their designs, per request.

    python benchmarks/instructions.py [--clients 100] [--count 20000] [--rows async thread udp]

Runs each server under valgrind's callgrind, drives it with loadgen
(64-byte requests), zeroes the counters after a warm-up and counts the
server's user-space instructions over a fixed number of requests, then
prints instructions per request for netkit and for the floor of its
design (benchmarks/floors/), and their ratio:

- async: ``upper-server --mode async`` against a bare ``asyncio.Protocol``
  whose ``data_received`` only writes ``data.upper()``, on uvloop and on
  the standard loop, each on the transport netkit uses there (uvloop's;
  on the standard loop netkit's lean one) (``loadgen tcp_rr``);
- thread: ``--mode thread`` against a Python thread-per-connection server
  that only does recv, upper, sendall (``tcp_rr``);
- udp: ``udp-echo serve --quiet`` against a recvmmsg/sendmmsg loop on
  netkit's own batch calls that only upper-cases (``udp_rr`` with 10 and
  100 clients).

Why: on a small shared machine transactions a second move by tens of per
cent between runs (benchmarks/tcp.py shows the spread), so a change of a
few per cent in the server's own work cannot be seen there.  The count of
instructions the server runs is the same from run to run within about 1 %
on uvloop and 3 % on the standard loop and for the batched UDP loop (whose
work per wake-up depends on how many requests are ready at once); the
system calls, the same for both servers, are not counted.  Under valgrind
threads take turns, so the thread rows count the GIL's hand-overs as the
machine would not.  It is a measure of work, not of time: cache misses and
the kernel's share are what benchmarks/tcp.py sees.  Needs valgrind
(Debian package ``valgrind``).
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
from udp_echo import free_port as free_udp_port
from udp_echo import wait_ready

WARM_UP = 5000


def count(
    argv: list[str], port: int, loadgen: Path, workload: str, clients: int, n: int, tmp: Path
) -> float:
    """The server's instructions per request over *n* requests after a warm-up."""
    out = tmp / f"callgrind.{port}"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # a Python start under valgrind takes seconds
        if workload == "udp_rr":
            wait_ready(port, timeout=120)
        else:
            wait_port(port, proc, timeout=120)
        run = [str(loadgen), workload, "-p", str(port), "-c", str(clients), "-s", "64", "-w", "0"]
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


def rows(clients: int) -> list[tuple[str, str, str, int, list[str], list[str]]]:
    """(group, label, workload, clients, floor argv, netkit argv) with PORT for the port."""
    py = sys.executable
    upper = [*NETKIT, "upper-server", "serve", "--quiet", "--port", "PORT", "--mode"]
    bare = [py, str(FLOORS_DIR / "bare_protocol.py")]
    udp_floor = [py, str(FLOORS_DIR / "udp_batch.py"), "--port", "PORT"]
    udp = [*NETKIT, "udp-echo", "serve", "--quiet", "--port", "PORT"]
    return [
        ("async", "async, uvloop", "tcp_rr", clients, [*bare, "uvloop", "PORT"], [*upper, "async"]),
        (
            "async",
            "async, asyncio",
            "tcp_rr",
            clients,
            [*bare, "lean", "PORT"],
            [*upper, "async", "--loop", "asyncio"],
        ),
        (
            "thread",
            "thread",
            "tcp_rr",
            clients,
            [py, str(FLOORS_DIR / "thread_server.py"), "PORT"],
            [*upper, "thread"],
        ),
        ("udp", "udp-echo, 10", "udp_rr", 10, udp_floor, udp),
        ("udp", "udp-echo, 100", "udp_rr", 100, udp_floor, udp),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="loadgen connections (TCP)")
    parser.add_argument("--count", type=int, default=20000, help="requests counted")
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=["async", "thread", "udp"],
        default=["async", "thread", "udp"],
        help="which comparisons to run",
    )
    opts = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"benchmarks/instructions.py: {tool} is needed (Debian package valgrind)")
    print(
        f"server user-space instructions per request (callgrind), 64-byte requests, "
        f"{opts.count} counted after {WARM_UP}"
    )
    print(f"{'server, clients':22} {'floor':>9} {'netkit':>9} {'netkit/floor':>13}")
    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        loadgen, _ref = build(tmp)
        for group, label, workload, clients, floor, ours in rows(opts.clients):
            if group not in opts.rows:
                continue
            got = []
            for argv in (floor, ours):
                port = free_udp_port() if workload == "udp_rr" else free_port()
                argv = [str(port) if a == "PORT" else a for a in argv]
                got.append(count(argv, port, loadgen, workload, clients, opts.count, tmp))
            base, mine = got
            name = label if workload == "udp_rr" else f"{label}, {clients}"
            print(f"{name:22} {base:9,.0f} {mine:9,.0f} {mine / base:12.2f}x", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""UDP echo benchmark: `netkit udp-echo serve --quiet` against the C reference.

Run from the project root (or anywhere) with one command:

    python benchmarks/udp_echo.py            # c=10 and c=100, 3 s each, 3 rounds
    python benchmarks/udp_echo.py --rounds 1 --duration 2
    python benchmarks/udp_echo.py --floors   # and the design's floor in each round

It builds ../shared/bench/loadgen.c and ref_c_echo.c with cc into a
temporary directory, then for each concurrency runs the C reference and the
netkit server alternately (C, netkit, C, floor, C, ...), each pinned to CPU 1
while loadgen runs on CPU 0 (taskset), with the same loadgen udp_rr flags,
and prints tx/s side by side with netkit's ratio to the mean of the two C
runs around each of its runs (median over the rounds).
Absolute numbers drift with whatever else runs on the machine; the ratios
from one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tcp import BENCH, FLOORS_DIR, terminate  # ../shared/bench, found from a worktree too

#: issue 10: udp-echo serve --quiet at these concurrencies, ratio to the C reference
GOALS = {10: 0.85, 100: 0.85}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 10.0) -> None:
    """Probe the server with a datagram until it answers (bounded)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        while time.monotonic() < deadline:
            s.settimeout(0.2)
            try:
                s.send(b"ping")
                if s.recv(100):
                    return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise SystemExit(f"server on port {port} did not answer within {timeout} s")


def taskset(cpu: str | None, argv: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpu, *argv]


def netkit_command() -> list[str]:
    exe = Path(sys.executable).with_name("netkit")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "netkit"]


def measure(
    server: list[str], loadgen: str, conc: int, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen(
        taskset(
            args.server_cpu,
            [*server, str(port)] if server[-1] == "udp" else [*server, "--port", str(port)],
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_ready(port)
        out = subprocess.run(
            taskset(
                args.load_cpu,
                [
                    loadgen,
                    "udp_rr",
                    "-p",
                    str(port),
                    "-c",
                    str(conc),
                    "-s",
                    str(args.size),
                    "-d",
                    str(args.duration),
                    "-w",
                    str(args.warmup),
                ],
            ),
            capture_output=True,
            text=True,
            timeout=args.duration + args.warmup + 30,
            check=True,
        ).stdout
    finally:
        terminate(proc)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--conc", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--load-cpu", default="0")
    ap.add_argument("--bench-dir", type=Path, default=BENCH)
    ap.add_argument("--server-args", default="", help="extra arguments for netkit udp-echo serve")
    ap.add_argument(
        "--floors",
        action="store_true",
        help="also the floor of the design (benchmarks/floors/udp_batch.py) in each round",
    )
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        args.server_cpu = args.load_cpu = None

    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmp:
        loadgen, ref = f"{tmp}/loadgen", f"{tmp}/ref_c_echo"
        for src, exe in (("loadgen.c", loadgen), ("ref_c_echo.c", ref)):
            subprocess.run(["cc", "-O2", "-Wall", "-o", exe, str(args.bench_dir / src)], check=True)
        env = dict(os.environ, REF_HOST="127.0.0.1")
        netkit = [*netkit_command(), "udp-echo", "serve", "--quiet", *args.server_args.split()]
        print(
            f"udp_rr -s {args.size}, {args.duration:g} s per run, {args.rounds} round(s); "
            f"server on CPU {args.server_cpu}, loadgen on CPU {args.load_cpu}"
        )
        print(f"netkit: {' '.join(netkit)}")
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        floor = [sys.executable, str(FLOORS_DIR / "udp_batch.py")]
        floor_head = f" {'floor':>7}" if args.floors else ""
        head = f"{'conc':>5} {'C ref tx/s':>12} {'netkit tx/s':>12} {'ratio':>7}"
        print(f"{head}{floor_head}   per round")
        medians: dict[int, float] = {}
        floors: dict[int, float] = {}
        for conc in args.conc:
            ratios, refs, ours, floor_ratios = [], [], [], []
            # C, netkit, C, floor, C, ...: every run is compared with the mean
            # of the C runs just before and after it, so drift cancels out
            before = measure([ref, "udp"], loadgen, conc, args, env)["tps"]
            for _ in range(args.rounds):
                n = measure(netkit, loadgen, conc, args, env)
                if n.get("upper_frac", 1.0) < 0.99:
                    raise SystemExit(f"netkit replies were not upper-cased: {n}")
                after = measure([ref, "udp"], loadgen, conc, args, env)["tps"]
                refs.append((before + after) / 2)
                ours.append(n["tps"])
                ratios.append(n["tps"] / refs[-1])
                before = after
                if args.floors:  # after netkit, in the same round
                    f = measure(floor, loadgen, conc, args, env)["tps"]
                    after = measure([ref, "udp"], loadgen, conc, args, env)["tps"]
                    floor_ratios.append(f / ((before + after) / 2))
                    before = after
            per = " ".join(f"{x:.2f}" for x in ratios)
            medians[conc] = statistics.median(ratios)
            floor_col = ""
            if floor_ratios:
                floors[conc] = statistics.median(floor_ratios)
                floor_col = f" {floors[conc]:>7.2f}"
                per += "  floor " + " ".join(f"{x:.2f}" for x in floor_ratios)
            print(
                f"{conc:>5} {statistics.median(refs):>12.0f} {statistics.median(ours):>12.0f} "
                f"{statistics.median(ratios):>7.2f}{floor_col}   {per}",
                flush=True,
            )
        print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print("(other work on this machine makes single rounds noisy; compare the medians)")
    print("goals (issue 10, ratio to the C reference):")
    for conc, goal in GOALS.items():
        if conc in medians:
            verdict = "met" if medians[conc] >= goal else "NOT met"
            print(
                f"  udp_rr c={conc} udp-echo serve --quiet: "
                f"{medians[conc]:.2f}x (goal {goal:.2f}x) {verdict}"
            )
            if conc in floors:
                print(f"    floor: Python recvmmsg echo without the policy: {floors[conc]:.2f}x")


if __name__ == "__main__":
    main()

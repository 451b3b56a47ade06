"""TCP benchmark: netkit's stream servers against the C reference, side by side.

    python benchmarks/tcp.py [--duration 2] [--quick] [--repeat 3] [--floors]

Builds ../shared/bench/loadgen.c and ref_c_echo.c into a temporary
directory, then for each workload runs the C reference and each netkit mode
alternately (C, netkit, C, floor, C, ...: every run between two C runs),
the server pinned to CPU 1 and loadgen to CPU 0 (taskset), and prints
transactions per second with the ratio to the mean of the two C runs
around it:

- upper-server, persistent connections (loadgen tcp_rr) with 10, 100, 1000
  clients, in sync / thread / fork / async mode (async on uvloop, and on
  plain asyncio at 100 for comparison);
- upper-server connect-line-close (tcp_crr -S) with 10 clients, including
  fork mode with a fork per connection and with --prefork;
- tcp-time daytime connect-read-close (tcp_crr) against the C daytime server.

With --floors, each row with a goal at 100 and 1000 connections is
followed by the floors of its design, measured in the same row: the
least a server built that way can do (benchmarks/floors/): for --mode
thread a thread-per-connection server in C and in plain Python, for
--mode async a bare Protocol on the same event loop and transport (on the
standard loop netkit's lean transport; the same Protocol on asyncio's own
transport is shown beside it as "ref").  A goal missed by a
mode that is level with its floor is the design's limit on this machine,
not netkit's overhead.

Absolute numbers drift with what else runs on the machine; the ratios
from one run are what to compare.  Every netkit server runs with --quiet
and --max-clients 1100 (so 1000 clients are all served in thread and fork
mode too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the instruments: ../shared/bench from the project (or from a worktree one level deeper)
BENCH = next(
    (
        d
        for d in (ROOT.parent / "shared" / "bench", ROOT.parent.parent / "shared" / "bench")
        if (d / "loadgen.c").exists()
    ),
    ROOT.parent / "shared" / "bench",
)
NETKIT = [sys.executable, "-m", "netkit"]
FLOORS_DIR = Path(__file__).resolve().parent / "floors"
SERVER_CPU, LOAD_CPU = "1", "0"

#: issue 10's speed goals: ratio to the C reference in the same run (the fork
#: goal, against socketserver.ForkingTCPServer, is benchmarks/fork.py's)
GOALS = {
    ("tcp_rr", 100, "async"): 0.85,
    ("tcp_rr", 1000, "async"): 0.85,
    ("tcp_rr", 100, "async --loop asyncio"): 0.75,
    ("tcp_rr", 100, "thread"): 0.55,
    ("tcp_crr -S", 10, "fork --prefork 8"): 0.80,
    ("tcp_crr", 10, "tcp-time"): 1.0,
}


def compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("benchmarks/tcp.py: a C compiler (cc) is needed to build the instruments")
    return cc


def build(tmp: Path) -> tuple[Path, Path]:
    cc = compiler()
    out = []
    for name in ("loadgen", "ref_c_echo"):
        exe = tmp / name
        subprocess.run([cc, "-O2", "-Wall", "-o", str(exe), str(BENCH / f"{name}.c")], check=True)
        out.append(exe)
    return out[0], out[1]


def floors(tmp: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """The floor servers of each mode with goals: (label, argv before the port)."""
    thread_c = tmp / "thread_server"
    src = FLOORS_DIR / "thread_server.c"
    subprocess.run(
        [compiler(), "-O2", "-Wall", "-pthread", "-o", str(thread_c), str(src)], check=True
    )
    bare = [sys.executable, str(FLOORS_DIR / "bare_protocol.py")]
    return {
        "thread": [
            ("floor: C thread/conn", [str(thread_c)]),
            ("floor: Python thread/conn", [sys.executable, str(FLOORS_DIR / "thread_server.py")]),
        ],
        "async": [("floor: bare uvloop Protocol", [*bare, "uvloop"])],
        "async --loop asyncio": [
            ("floor: bare Protocol, lean", [*bare, "lean"]),
            ("ref: bare asyncio Protocol", [*bare, "asyncio"]),
        ],
    }


def pinned(cpu: str, argv: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", cpu, *argv] if taskset and (os.cpu_count() or 1) > 1 else argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def terminate(proc: subprocess.Popen[bytes], wait: float = 10) -> None:
    """SIGTERM, then SIGKILL if *proc* has not exited within *wait* seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Run:
    def __init__(self, argv: list[str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, argv),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "REF_HOST": "127.0.0.1"},
        )
        wait_port(port, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            terminate(self.proc)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def load(loadgen: Path, mode: str, port: int, conc: int, duration: float) -> dict[str, float]:
    args = [str(loadgen), *mode.split(), "-p", str(port), "-c", str(conc), "-d", str(duration)]
    if mode == "tcp_rr":
        args += ["-s", "64"]
    proc = subprocess.run(
        pinned(LOAD_CPU, args), capture_output=True, timeout=duration + 30, check=False
    )
    lines = proc.stdout.decode().strip().splitlines()
    if not lines:
        return {"tps": 0.0, "errors": -1}
    data: dict[str, float] = json.loads(lines[-1])
    return data


def netkit_upper(mode: str) -> list[str]:
    args = [*NETKIT, "upper-server", "serve", "--quiet", "--max-clients", "1100"]
    return [*args, "--mode", *mode.split(), "--port"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="only the workloads with goals")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each server per row, each between two C runs; the median is shown, "
        "with the spread of the ratios",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="after each mode with a goal at 100 and 1000 clients, the floors of its design",
    )
    opts = parser.parse_args()

    import importlib.util

    uvloop = importlib.util.find_spec("uvloop") is not None
    rows: list[tuple[str, int, str, float, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmpdir:
        loadgen, ref = build(Path(tmpdir))
        floor_servers = floors(Path(tmpdir)) if opts.floors else {}

        def run_one(argv: list[str], workload: str, conc: int) -> dict[str, float]:
            port = free_port()
            server = Run([*argv, str(port)], port)
            try:
                return load(loadgen, workload, port, conc, opts.duration)
            finally:
                server.stop()

        def measure_row(
            workload: str, conc: int, refmode: str, servers: list[tuple[str, list[str]]]
        ) -> None:
            # the runs go C, server 1, C, server 2, C, ... (--repeat times over):
            # each server run is compared with the mean of the C runs just
            # before and just after it, so a drift of the machine's speed
            # during the row cancels out instead of landing on one side
            c_ref = [str(ref), refmode]
            runs: dict[str, list[tuple[float, float, dict[str, float]]]] = {
                label: [] for label, _ in servers
            }
            before = run_one(c_ref, workload, conc)
            for _ in range(opts.repeat):
                for label, argv in servers:
                    got = run_one(argv, workload, conc)
                    after = run_one(c_ref, workload, conc)
                    base = (before["tps"] + after["tps"]) / 2
                    runs[label].append((got["tps"] / base if base else 0.0, base, got))
                    before = after
            for label, _ in servers:
                done = sorted(runs[label], key=lambda r: r[0])
                ratio, base, got = done[len(done) // 2]  # the median run
                rows.append((workload, conc, label, base, got["tps"], got))
                extra = ""
                if len(done) > 1:  # how far the runs spread: what one run can tell
                    extra += f"  (runs {done[0][0]:.2f}-{done[-1][0]:.2f})"
                if got.get("errors"):
                    extra += f"  errors {got['errors']:.0f}"
                if got.get("conns_ok", conc) < conc:
                    extra += f"  ({got['conns_ok']:.0f} of {conc} connections served)"
                print(
                    f"{workload:11} c={conc:<5} {label:27} {got['tps']:>9.0f} tx/s   "
                    f"C {base:>9.0f} tx/s   {ratio:5.2f}x{extra}",
                    flush=True,
                )

        def measure(workload: str, conc: int, refmode: str, modes: list[str]) -> None:
            for mode in modes:
                if mode == "tcp-time":
                    argv = [*NETKIT, "tcp-time", "serve", "--quiet", "--port"]
                else:
                    argv = netkit_upper(mode)
                servers = [(mode, argv)]
                if (workload, conc, mode) in GOALS and workload == "tcp_rr":
                    servers += floor_servers.get(mode, [])
                measure_row(workload, conc, refmode, servers)

        print(
            f"{'workload':11} {'clients':7} {'netkit mode':27} {'netkit':>14}   "
            f"{'C reference':>16}   ratio",
            flush=True,
        )
        rr_modes = ["sync", "thread", "fork", "async"]
        if opts.quick:
            measure("tcp_rr", 100, "tcp", ["thread", "async", "async --loop asyncio"])
            measure("tcp_rr", 1000, "tcp", ["async"])
        else:
            measure("tcp_rr", 10, "tcp", rr_modes)
            measure("tcp_rr", 100, "tcp", [*rr_modes, "async --loop asyncio"])
            measure("tcp_rr", 1000, "tcp", ["thread", "fork", "async"])
        crr = ["fork", "fork --prefork 8"]
        if not opts.quick:
            crr = ["sync", "thread", *crr, "async"]
        measure("tcp_crr -S", 10, "tcp", crr)
        measure("tcp_crr", 10, "daytime", ["tcp-time"])

    print()
    print(f"uvloop installed: {uvloop}; server on CPU {SERVER_CPU}, loadgen on CPU {LOAD_CPU}")
    print("goals (issue 10, ratio to the C reference; --mode fork's is benchmarks/fork.py's):")
    ratios = {(w, c, name): tps / base if base else 0.0 for w, c, name, base, tps, _ in rows}
    for (workload, conc, mode), ratio in ratios.items():
        goal = GOALS.get((workload, conc, mode))
        if goal is None:
            continue
        verdict = "met" if ratio >= goal else "NOT met"
        print(f"  {workload} c={conc} {mode}: {ratio:.2f}x (goal {goal:.2f}x) {verdict}")
        for label, _argv in floor_servers.get(mode, []):
            if (workload, conc, label) in ratios:
                print(f"    {label}: {ratios[workload, conc, label]:.2f}x")


if __name__ == "__main__":
    main()

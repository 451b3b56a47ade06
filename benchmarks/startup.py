"""Start-up cost of netkit, as ratios measured side by side in one run.

    python benchmarks/startup.py [--runs 30]

Runs each command alternately (so drift hits all alike) and compares medians:
``netkit --help`` and the completion path against ``python -c "import
click"`` (goal <= 1.3x), and every one-shot command with human output
(``udp-echo send``, ``tcp-time get``, ``upper-server send``, ``creosote
spew``, ``resolve localhost``, ``pack-ip 10.0.0.1``) against the same (goal
<= 2.0x); the clients talk to servers started in this process on port 0.
Prints ratios; never a pass/fail on absolute time.

netkit's own modules have no bytecode in a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (as here, often): each run then compiles them,
which an installed wheel never does; the table says which case it measured.
``--bytecode`` measures with bytecode for everything (a private cache
directory, warmed before the timed runs), as after ``pip install``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETKIT = str(Path(sys.executable).with_name("netkit"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="bytecode for every module (a private cache), as an installed wheel has",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    cache = None
    if args.bytecode:
        cache = tempfile.TemporaryDirectory(prefix="netkit-startup-pyc-")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache.name
    complete_env = dict(
        env, _NETKIT_COMPLETE="bash_complete", COMP_WORDS="netkit re", COMP_CWORD="1"
    )
    from netkit.events import Recorder
    from netkit.services.creosote import CreosoteListener
    from netkit.services.tcp_time import TimeServer
    from netkit.services.udp_echo import UdpEchoServer
    from netkit.services.upper import UpperServer

    servers = {
        "udp-echo": UdpEchoServer(Recorder(), port=0, quiet=True),
        "tcp-time": TimeServer(Recorder(), port=0, quiet=True),
        "upper-server": UpperServer(Recorder(), port=0, quiet=True),
        "creosote": CreosoteListener(Recorder(), port=0, quiet=True),
    }
    for server in servers.values():
        server.start()
    try:
        run(args.runs, env, complete_env, {k: s.address[1] for k, s in servers.items()})
    finally:
        for server in servers.values():
            server.stop()
        if cache is not None:
            cache.cleanup()


def run(
    runs: int, env: dict[str, str], complete_env: dict[str, str], ports: dict[str, int]
) -> None:
    def client(*argv: str) -> list[str]:
        return [NETKIT, *argv[:2], "--port", str(ports[argv[0]]), *argv[2:]]

    cases: list[tuple[str, list[str], dict[str, str], float | None]] = [
        ("python -c 'import click' (reference)", [sys.executable, "-c", "import click"], env, None),
        ("netkit --help", [NETKIT, "--help"], env, 1.3),
        ("completion path (netkit re<TAB>)", [NETKIT], complete_env, 1.3),
        ("netkit pack-ip 10.0.0.1", [NETKIT, "pack-ip", "10.0.0.1"], env, 2.0),
        ("netkit pack-ip 10.0.0.1 --json", [NETKIT, "pack-ip", "10.0.0.1", "--json"], env, 2.0),
        ("netkit resolve localhost", [NETKIT, "resolve", "localhost"], env, 2.0),
        ("netkit udp-echo send hi", client("udp-echo", "send", "hi"), env, 2.0),
        ("netkit tcp-time get", client("tcp-time", "get"), env, 2.0),
        ("netkit upper-server send hi", client("upper-server", "send", "hi"), env, 2.0),
        ("netkit creosote spew hi", client("creosote", "spew", "hi"), env, 2.0),
    ]
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    if "PYTHONPYCACHEPREFIX" in env:  # --bytecode: fill the cache first
        for _name, cmd, e, _goal in cases:
            subprocess.run(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(runs):
        for name, cmd, e, _goal in cases:
            t0 = time.perf_counter()
            subprocess.run(
                cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
            )
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times[cases[0][0]])
    print(f"{'command':42} {'median ms':>10} {'ratio':>7} {'goal':>6}")
    for name, _cmd, _e, goal in cases:
        med = statistics.median(times[name])
        ratio = med / ref
        mark = "" if goal is None else ("ok" if ratio <= goal else "MISSED")
        goal_s = "" if goal is None else f"<={goal}"
        print(f"{name:42} {med * 1000:10.1f} {ratio:7.2f} {goal_s:>6} {mark}")
    print(f"({runs} runs each, interleaved; medians; this machine, this moment)")
    print(f"(netkit's own modules: {_bytecode(env)})")


def _bytecode(env: dict[str, str]) -> str:
    if "PYTHONPYCACHEPREFIX" in env:
        return "bytecode from a warmed private cache (--bytecode), as installed"
    import netkit

    cached = any(Path(netkit.__file__).parent.glob("__pycache__/*.pyc"))
    if cached:
        return "bytecode in __pycache__"
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return "compiled on every run (PYTHONDONTWRITEBYTECODE set, no __pycache__)"
    return "no bytecode yet (the first run writes __pycache__)"


if __name__ == "__main__":
    main()

"""Memory: the server's RSS with 1000 idle connections (issue 10: async <= 40 MiB).

    python benchmarks/idle_memory.py [--clients 1000] [--mode async ...]

Starts the real ``netkit upper-server serve --quiet`` in each mode asked
for (default: async on uvloop and async on plain asyncio), reads its
``VmRSS`` from ``/proc/PID/status`` once it listens, then opens *clients*
connections, sends one line on each and reads its reply (so every one is
accepted and has a session), leaves them all idle and reads ``VmRSS`` and
``VmHWM`` (the peak) again.  Linux only (``/proc``).  A measurement, not a
test: run it by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import time

GOAL_MIB = 40.0
MODES = {
    "async": ["--mode", "async"],
    "async-asyncio": ["--mode", "async", "--loop", "asyncio"],
    "thread": ["--mode", "thread"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"\n")  # an empty line: the server closes it at once
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def served(port: int, n: int) -> list[socket.socket]:
    """*n* connections, each answered once (so each has a session), then left idle."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
        s.sendall(b"hello\n")
    for s in socks:
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                raise SystemExit("the server closed a connection before its reply")
            got += chunk
        if got != b"HELLO\n":
            raise SystemExit(f"unexpected reply {got!r}")
    return socks


def measure(mode: list[str], clients: int) -> tuple[float, float, float]:
    """RSS at start, RSS with the idle connections, peak RSS; MiB."""
    port = free_port()
    argv = [sys.executable, "-m", "netkit", "upper-server", "serve", "--quiet", *mode]
    argv += ["--max-clients", str(clients + 100), "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socks: list[socket.socket] = []
    try:
        wait_listening(port, proc)
        start = status_kib(proc.pid, "VmRSS")
        socks = served(port, clients)
        loaded = status_kib(proc.pid, "VmRSS")
        peak = status_kib(proc.pid, "VmHWM")
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return start / 1024, loaded / 1024, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: async ones")
    opts = parser.parse_args()
    if not os.path.exists("/proc/self/status"):
        sys.exit("benchmarks/idle_memory.py: needs Linux /proc")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = opts.clients + 200
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    print(f"upper-server serve --quiet, {opts.clients} idle connections (each answered once)")
    print(f"{'mode':14} {'RSS at start':>13} {'RSS idle':>10} {'peak':>8}")
    for name in opts.mode or ["async", "async-asyncio"]:
        start, loaded, peak = measure(MODES[name], opts.clients)
        verdict = ""
        if name == "async" and opts.clients == 1000:
            met = "met" if loaded <= GOAL_MIB else "NOT met"
            verdict = f"   goal <= {GOAL_MIB:.0f} MiB: {met}"
        row = f"{name:14} {start:>9.1f} MiB {loaded:>6.1f} MiB {peak:>4.1f} MiB{verdict}"
        print(row, flush=True)


if __name__ == "__main__":
    main()

"""Run by test_leaks.py in a process of its own: many short connections and
failed binds through the service API, then what /proc/self says.

Prints one JSON object: per phase, threads, open descriptors and VmRSS (KiB).
"""

from __future__ import annotations

import json
import socket
import sys
import time

from netkit.net import NetError
from netkit.services.tcp_time import TimeServer
from netkit.services.upper import UpperServer
from tests.proc import fds, status_kib, threads


def measure() -> dict[str, int]:
    return {"threads": threads("self"), "fds": fds("self"), "rss_kib": status_kib("self", "VmRSS")}


def settle(target_threads: int, timeout: float = 5.0) -> None:
    """Wait (bounded) until the per-connection threads have ended."""
    deadline = time.monotonic() + timeout
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(0.01)
        while threads("self") > target_threads:
            if time.monotonic() > deadline:
                return
            try:
                a.recv(1)  # a bounded wait, not a sleep
            except TimeoutError:
                pass


def upper_round(addr: tuple[str, int], n: int) -> None:
    for _ in range(n):
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"x\n")
            s.recv(16)


def time_round(addr: tuple[str, int], n: int) -> None:
    for _ in range(n):
        with socket.create_connection(addr, timeout=5) as s:
            while s.recv(64):
                pass


def main() -> None:
    n_conn = int(sys.argv[1])
    n_bind = int(sys.argv[2])
    sink = lambda _e: None  # noqa: E731
    out: dict[str, object] = {}
    upper = UpperServer(sink, port=0, mode="thread", quiet=True).start()
    aio = UpperServer(sink, port=0, mode="async", quiet=True).start()
    tcp_time = TimeServer(sink, port=0, quiet=True).start()
    servers = [(upper, upper_round), (aio, upper_round), (tcp_time, time_round)]
    # warm up: allocator arenas, thread stacks, the event loop
    for srv, fn in servers:
        fn(srv.address, 300)
    settle(4)  # main, and the three servers' loops
    base = measure()
    out["base"] = base
    # the connections: most through thread mode (a thread each), a share each
    # through async mode and tcp-time
    share = n_conn // 5
    t0 = time.monotonic()
    upper_round(upper.address, n_conn - 2 * share)
    upper_round(aio.address, share)
    time_round(tcp_time.address, share)
    out["conn_seconds"] = round(time.monotonic() - t0, 2)
    settle(base["threads"])
    out["after_connections"] = measure()
    # failed binds: every kind of server on a port that is taken
    busy = upper.address[1]
    failed = 0
    for i in range(n_bind):
        kind = i % 3
        try:
            if kind == 0:
                UpperServer(sink, port=busy, mode="thread").start()
            elif kind == 1:
                UpperServer(sink, port=busy, mode="async").start()
            else:
                TimeServer(sink, port=busy).start()
        except NetError:
            failed += 1
    out["failed_binds"] = failed
    out["after_binds"] = measure()
    for srv, _fn in servers:
        srv.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

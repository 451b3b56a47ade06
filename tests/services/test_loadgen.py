"""demo 5's load generator and measurement against a real server on port 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from netkit.clients.loadgen import bucket, percentile
from netkit.demo_measure import measure
from netkit.events.upper_server import Connected
from netkit.services.upper import UpperServer
from tests.proc import children
from tests.sink import Collector


def test_histogram_buckets_and_percentiles() -> None:
    assert [bucket(v) for v in (0, 7, 99, 100, 123, 4567, 98765)] == [
        0, 7, 99, 100, 120, 4500, 98000,
    ]  # fmt: skip
    hist = {10: 50, 20: 49, 5000: 1}
    assert percentile(hist, 0.5) == 10 and percentile(hist, 0.99) == 20
    assert percentile(hist, 1.0) == 5000 and percentile({}, 0.5) is None


def loadgen(port: int, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "netkit.clients.loadgen", "127.0.0.1", str(port), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def test_idle_holder_and_busy_driver_as_processes() -> None:
    events = Collector()
    with UpperServer(events, port=0, mode="thread") as server:
        port = server.address[1]
        holder, driver = loadgen(port, "--idle", "5"), loadgen(port, "--busy", "--seconds", "0.3")
        try:
            out = []
            for proc in (holder, driver):
                assert proc.stdout is not None and proc.stdin is not None
                assert proc.stdout.readline() == b"ready\n"
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
            events.wait_for(Connected, 6)  # the idle five are served, then silent
            assert holder.stdin is not None
            holder.stdin.write(b"stop\n")
            holder.stdin.flush()
            for proc in (holder, driver):
                stdout, _ = proc.communicate(timeout=20)
                out.append(json.loads(stdout))
        finally:
            for proc in (holder, driver):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
    held, driven = out
    assert held == {"connections": 5}
    assert driven["requests"] > 0 and driven["errors"] == 0 and driven["connections"] >= 1
    assert sum(driven["latency_us"].values()) == driven["requests"]
    assert 0.3 <= driven["seconds"] < 5


def test_measure_async_and_fork_and_leave_nothing_behind() -> None:
    loop = measure("async", 0.3, idle=20, busy=2)
    fork = measure("fork", 0.3, idle=20, busy=2)
    assert children(os.getpid()) == []
    for got in (loop, fork):
        assert got.requests > 0 and got.errors == 0 and got.idle == 20
        assert got.served >= 22 and got.cpu_seconds > 0
    assert loop.usage.processes == 1 and loop.usage.threads < 10
    assert fork.usage.processes > 20 and fork.usage.pss_kib > loop.usage.pss_kib

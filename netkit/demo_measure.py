"""``netkit demo 5``'s measurement: each server mode in a process of its own,
loaded by client processes of their own, its cost read from /proc.

Clients inside the demo's process would share its GIL and CPU with the
server they measure, and the GIL would decide the ranking.  Here the server
is ``netkit upper-server serve --mode M --quiet`` as a user runs it, and the
load comes from :mod:`netkit.clients.loadgen` processes: one holds many idle
connections (what costs a thread or a process per client), a few drive busy
ones.  Threads, processes and memory are those of the server and its
children, from /proc, while the load runs.

Every wait is bounded; whatever was started is stopped (SIGTERM, then
SIGKILL) and waited for before :func:`measure` returns or raises, a
KeyboardInterrupt included.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from netkit.clients.loadgen import percentile
from netkit.net import NetError

#: the start of a server process: on Linux it gets SIGTERM when the demo
#: dies (prctl PR_SET_PDEATHSIG survives exec), so a killed demo leaves none
_LAUNCH = """\
import os, signal, sys
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(sys.argv[1]):
        sys.exit(1)
os.execv(sys.executable, [sys.executable, "-m", "netkit", *sys.argv[2:]])
"""

START_TIMEOUT = 20.0  # seconds for a server and its clients to be ready


class MeasureError(NetError):
    """The measurement could not be made (a process did not start or answer)."""


@dataclass
class Usage:
    """What the server and its children held (the largest of the samples)."""

    threads: int = 0
    processes: int = 0
    rss_kib: int = 0
    pss_kib: int = 0

    def widen(self, other: Usage) -> None:
        """Keep the larger of each figure."""
        self.threads = max(self.threads, other.threads)
        self.processes = max(self.processes, other.processes)
        self.rss_kib = max(self.rss_kib, other.rss_kib)
        self.pss_kib = max(self.pss_kib, other.pss_kib)


@dataclass
class Measured:
    mode: str
    loop: str
    requests: int = 0
    connections: int = 0
    errors: int = 0
    seconds: float = 0.0
    latency_us: Counter[int] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    idle: int = 0
    served: int = 0  # connections the server's summary counted
    cpu_seconds: float = 0.0  # the server's and its children's, while the load ran

    @property
    def cpu_us_per_request(self) -> float | None:
        return self.cpu_seconds * 1e6 / self.requests if self.requests else None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, fraction: float) -> float | None:
        value = percentile(dict(self.latency_us), fraction)
        return None if value is None else value / 1000.0


# -- /proc ---------------------------------------------------------------------------------
def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def _kib(text: str | None) -> int:
    return int(text.split()[0]) if text else 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stats() -> dict[int, list[str]]:
    """Every process's /proc/PID/stat fields after the command name."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        out[int(entry)] = stat[stat.rindex(")") + 2 :].split()
    return out


def family_of(root: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """*root* and every process below it (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for pid, fields in (stats if stats is not None else _stats()).items():
        parents.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 100_000:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, ()))
    return found


def cpu_seconds(root: int) -> float:
    """CPU time of *root* and the processes below it, the reaped ones included
    (their time is added to their parent's cutime/cstime when it waits for them)."""
    stats = _stats()
    ticks = 0
    for pid in family_of(root, stats):
        fields = stats.get(pid)
        if fields is not None:
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / CLK_TCK


def usage(root: int) -> Usage:
    """Threads, processes, RSS and PSS of *root* and its descendants, now."""
    out = Usage()
    for pid in family_of(root):
        status = _status(pid)
        if not status:
            continue
        out.processes += 1
        out.threads += int(status.get("Threads", "0").strip() or 0)
        out.rss_kib += _kib(status.get("VmRSS"))
        out.pss_kib += _pss_kib(pid)
    return out


# -- processes -----------------------------------------------------------------------------
def _read_line(stream: IO[bytes], deadline: float, what: str) -> bytes:
    """One line from a child's pipe by *deadline* (no more than the line is read)."""
    fd = stream.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise MeasureError(f"{what} did not answer in time")
            chunk = os.read(fd, 1)
            if not chunk:
                raise MeasureError(f"{what} exited early")
            buf += chunk
    return buf


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM what still runs, SIGKILL what is left after a moment, reap all."""
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 3.0
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for proc in procs:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _spawn(
    started: list[subprocess.Popen[bytes]], args: list[str], **how: Any
) -> subprocess.Popen[bytes]:
    """Start *args* and put it in *started* at once: a Ctrl-C that comes while it
    starts waits (SIGINT blocked) until it is there, so the ``finally`` that
    stops *started* stops it too."""
    how.setdefault("stdin", subprocess.PIPE)
    how.setdefault("stdout", subprocess.PIPE)
    how.setdefault("stderr", subprocess.DEVNULL)
    masked = threading.current_thread() is threading.main_thread()
    if masked:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        proc = subprocess.Popen(args, close_fds=True, **how)
        started.append(proc)
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return proc


def measure(
    mode: str,
    seconds: float,
    *,
    idle: int = 200,
    busy: int = 4,
    lines: int = 50,
    progress: Callable[[float], None] | None = None,
) -> Measured:
    """Load ``upper-server --mode MODE`` with *idle* held and *busy* driven
    connections from processes of their own for *seconds*; what it cost."""
    python = sys.executable
    started: list[subprocess.Popen[bytes]] = []
    try:
        serve = ["upper-server", "serve", "--mode", mode, "--port", "0", "--json", "--quiet"]
        server = _spawn(
            started, [python, "-c", _LAUNCH, str(os.getpid()), *serve], stdin=subprocess.DEVNULL
        )
        assert server.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        listening = json.loads(_read_line(server.stdout, deadline, f"--mode {mode} server"))
        host, port = listening["host"], str(listening["port"])
        gen = [python, "-m", "netkit.clients.loadgen", host, port]
        holder = _spawn(started, [*gen, "--idle", str(idle)])
        drivers = [
            _spawn(started, [*gen, "--busy", "--seconds", f"{seconds:g}", "--lines", str(lines)])
            for _ in range(busy)
        ]
        for proc in [holder, *drivers]:
            assert proc.stdout is not None
            if _read_line(proc.stdout, deadline, "a load generator").strip() != b"ready":
                raise MeasureError("a load generator failed to connect")
        for proc in [holder, *drivers]:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        result = Measured(mode, listening.get("loop") or "")
        cpu_before = cpu_seconds(server.pid)
        _watch(server.pid, drivers, seconds, result, progress)
        result.cpu_seconds = cpu_seconds(server.pid) - cpu_before
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write(b"stop\n")
        holder.stdin.flush()
        held = json.loads(_read_line(holder.stdout, time.monotonic() + 10, "the idle clients"))
        result.idle = int(held.get("connections", 0))
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=10)
        for line in out.splitlines():
            event = json.loads(line)
            if event.get("event") == "summary":
                result.served = int(event["counts"].get("connections", 0))
        return result
    finally:
        _stop(started)


def _watch(
    server: int,
    drivers: list[subprocess.Popen[bytes]],
    seconds: float,
    result: Measured,
    progress: Callable[[float], None] | None,
) -> None:
    """Sample the server's /proc while the drivers run; add up their results."""
    t0 = time.monotonic()
    sample_at = [t0 + seconds * f for f in (0.3, 0.6, 0.9)]
    deadline = t0 + seconds + 15.0
    pending = {d.stdout.fileno(): d for d in drivers if d.stdout is not None}
    buffers: dict[int, bytes] = dict.fromkeys(pending, b"")
    with selectors.DefaultSelector() as sel:
        for fd in pending:
            sel.register(fd, selectors.EVENT_READ)
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            if sample_at and now >= sample_at[0]:
                sample_at.pop(0)
                result.usage.widen(usage(server))
            if progress is not None:
                progress(min((now - t0) / seconds, 1.0))
            wake = min([*sample_at[:1], now + 0.25])
            for key, _ in sel.select(max(wake - time.monotonic(), 0.0)):
                fd = int(key.fd)
                chunk = os.read(fd, 65536)
                buffers[fd] += chunk
                if chunk and not buffers[fd].endswith(b"\n"):
                    continue
                sel.unregister(fd)
                del pending[fd]
                _add(result, buffers[fd])
    if pending:
        raise MeasureError("a load generator did not finish in time")


def _add(result: Measured, raw: bytes) -> None:
    try:
        got: dict[str, Any] = json.loads(raw)
    except ValueError:
        raise MeasureError("a load generator ended without its result") from None
    if "error" in got:
        raise MeasureError(f"a load generator failed: {got['error']}")
    result.requests += int(got["requests"])
    result.connections += int(got["connections"])
    result.errors += int(got["errors"])
    result.seconds = max(result.seconds, float(got["seconds"]))
    for value, n in got["latency_us"].items():
        result.latency_us[int(value)] += int(n)

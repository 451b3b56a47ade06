"""Helpers for the stream-service tests: an event collector, socket clients,
zombie checks, and the inetd / xinetd binaries fetched once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netkit.events import Event
from tests.helpers import children

ROOT = Path(__file__).resolve().parent.parent


class Events:
    """A thread-safe sink that tests can wait on (no sleeping)."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def of(self, kind: type[Any]) -> list[Any]:
        with self._cond:
            return [e for e in self.items if isinstance(e, kind)]

    def wait_for(
        self, pred: Callable[[list[Event]], bool], timeout: float = 10, what: str = ""
    ) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: pred(self.items), timeout):
                raise AssertionError(f"timed out waiting for {what or pred}: {self.items[-10:]!r}")

    def wait_count(self, kind: type[Any], n: int, timeout: float = 10) -> list[Any]:
        self.wait_for(
            lambda items: sum(isinstance(e, kind) for e in items) >= n,
            timeout,
            f"{n} {kind.__name__} events",
        )
        return self.of(kind)


def connect(addr: tuple[str, int], timeout: float = 5) -> socket.socket:
    return socket.create_connection(addr, timeout=timeout)


def recv_line(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read one line (bounded by the socket timeout and *limit*)."""
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def recv_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    buf = b""
    while len(buf) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def zombies(ppid: int) -> list[int]:
    """PIDs of zombie children of *ppid* (from /proc)."""
    return children(ppid, state="Z")


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 (for peers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inetd_dir() -> Path:
    """Where the inetd / xinetd binaries are: $NETKIT_INETD_DIR, or fetched once.

    scripts/fetch-inetd downloads the Debian packages and extracts them; a
    failure fails the test (a missing peer never skips).
    """
    env = os.environ.get("NETKIT_INETD_DIR")
    base = Path(env) if env else ROOT / ".cache" / "inetd"
    if not (base / "usr/sbin/inetd").exists() or not (base / "usr/sbin/xinetd").exists():
        proc = subprocess.run(
            [str(ROOT / "scripts" / "fetch-inetd"), str(base)],
            capture_output=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(
                "scripts/fetch-inetd failed (openbsd-inetd / xinetd binaries are needed):\n"
                + proc.stderr.decode(errors="replace")
            )
    return base


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 10) -> None:
    """Wait until *proc* listens on TCP *port* (read from /proc/net), or fail.

    inetd and xinetd do not say when they are ready; between looks this waits
    on the process itself, so a daemon that dies is noticed at once.
    """
    deadline = time.monotonic() + timeout
    hexport = f":{port:04X}"
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if cols[1].endswith(hexport) and cols[3] == "0A":  # LISTEN
                    return
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"{proc.args} exited with {proc.returncode} before listening")
    raise AssertionError(f"{proc.args} did not listen on port {port} within {timeout} s")


def wait_udp_bound(proc: subprocess.Popen[bytes], port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    hexport = f":{port:04X}"
    while time.monotonic() < deadline:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            if any(row.split()[1].endswith(hexport) for row in rows):
                return
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"{proc.args} exited with {proc.returncode} before binding")
    raise AssertionError(f"{proc.args} did not bind UDP port {port} within {timeout} s")


def stop_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for f in (proc.stdout, proc.stderr, proc.stdin):
        if f is not None:
            f.close()

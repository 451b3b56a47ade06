"""Helpers for the stream-service tests: socket clients, waits for a peer to
bind, and the inetd / xinetd binaries fetched once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from tests.proc import bound_ports

ROOT = Path(__file__).resolve().parent.parent


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
    _wait_bound(proc, port, timeout, "tcp")


def wait_udp_bound(proc: subprocess.Popen[bytes], port: int, timeout: float = 10) -> None:
    """Wait until *proc* has UDP *port* bound (read from /proc/net), or fail."""
    _wait_bound(proc, port, timeout, "udp")


def _wait_bound(proc: subprocess.Popen[bytes], port: int, timeout: float, proto: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port in bound_ports(proto, listening=proto == "tcp"):
            return
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"{proc.args!r} exited with {proc.returncode} before binding")
    raise AssertionError(f"{proc.args!r} did not bind {proto} port {port} within {timeout} s")


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

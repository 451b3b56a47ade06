"""Helpers for the reliability suite: idle client connections, waits that are
bounded and never sleep, a server whose output is read in the background."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def wait_until(
    cond: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    step: float = 0.02,
) -> bool:
    """Re-check *cond* until true or *timeout*; between looks wait on *proc* (or a
    socket-less timer) so the wait is bounded and ends early if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if proc is not None:
            try:
                proc.wait(timeout=min(step, left))
            except subprocess.TimeoutExpired:
                pass
        else:
            _pause(min(step, left))


def _pause(seconds: float) -> None:
    # a bounded wait on a socket that never becomes readable: no time.sleep
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(seconds)
        try:
            a.recv(1)
        except TimeoutError:
            pass


def open_idle(port: int, n: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """*n* connections that send nothing."""
    out = []
    try:
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=5)
            out.append(s)
    except BaseException:
        close_all(out)
        raise
    return out


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    socks.clear()


def exchange(sock: socket.socket, line: bytes) -> bytes:
    """Send one line, read one reply line (bounded by the socket's timeout)."""
    sock.sendall(line)
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < 1 << 20:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf

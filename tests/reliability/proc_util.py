"""Helpers for the reliability suite: idle client connections, waits that are
bounded and never sleep, a server whose output is read in the background."""

from __future__ import annotations

import os
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


class Served:
    """A real ``netkit ... --json`` server on port 0 whose stdout and stderr are
    read by background threads (a server that logs a lot never blocks on a
    full pipe); tests wait on its events with a timeout."""

    def __init__(self, *args: str, preexec_fn: Callable[[], None] | None = None) -> None:
        import json
        import threading

        from tests.helpers import NETKIT, env, read_line

        self.args = [NETKIT, *args, "--port", "0", "--json"]
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env(),
            preexec_fn=preexec_fn,
            start_new_session=True,  # its own process group: cleanup reaches any child
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stderr is not None
        try:
            first = read_line(self.proc.stdout, 10)
        except (TimeoutError, EOFError):
            self.proc.kill()
            _o, err = self.proc.communicate(timeout=5)
            raise AssertionError(f"{args} did not start: {err.decode(errors='replace')}") from None
        self.listening = json.loads(first)
        self.port: int = self.listening["port"]
        os.set_blocking(self.proc.stdout.fileno(), True)
        self.events: list[dict[str, object]] = []
        self.stderr_lines: list[tuple[float, bytes]] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_out(self) -> None:
        import json

        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append((time.monotonic(), line))
                self._cond.notify_all()

    def of(self, kind: str) -> list[dict[str, object]]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(
        self, pred: Callable[[list[dict[str, object]]], bool], timeout: float, what: str
    ) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: pred(self.events), timeout):
                raise AssertionError(f"timed out ({timeout} s) waiting for {what}")

    def wait_count(self, kind: str, n: int, timeout: float = 10) -> list[dict[str, object]]:
        self.wait_for(lambda evs: sum(e["event"] == kind for e in evs) >= n, timeout, f"{n} {kind}")
        return self.of(kind)

    def stop(self, sig: int = 15, timeout: float = 5) -> tuple[int, float]:
        """Signal, wait (bounded); (exit code, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.args} did not stop within {timeout} s") from None
        took = time.monotonic() - t0
        for t in self._readers:
            t.join(5)
        return self.proc.returncode, took

    @property
    def stderr(self) -> bytes:
        with self._cond:
            return b"".join(line for _t, line in self.stderr_lines)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        try:  # a child that outlived it would hold the pipes open
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for t in self._readers:
            t.join(5)
        if not any(t.is_alive() for t in self._readers):
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()

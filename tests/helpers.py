"""Test helpers: run the real netkit process, wait on sockets and pipes with timeouts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from netkit.services.core import Service

NETKIT = str(Path(sys.executable).with_name("netkit"))

# Debian package of every peer program the tests use.
PEER_PACKAGES = {
    "ncat": "ncat",
    "socat": "socat",
    "nc": "netcat-openbsd",
    "rdate": "rdate",
    "logger": "bsdutils",
    "dnsmasq": "dnsmasq-base",
    "tshark": "tshark",
    "rsyslogd": "rsyslog",
    "chronyd": "chrony",
    "ntpdig": "ntpsec-ntpdig",
    "unshare": "util-linux",
}


#: netkit's SNTP server on port 0 with JSON events (append --stratum, --rate, ...)
SNTP_SERVE = ("tcp-time", "serve", "--protocol", "sntp", "--port", "0", "--json")


def peer(name: str) -> str:
    """Path of a peer program; a missing one fails the test (never a silent skip)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(
            f"peer program {name!r} is missing: apt-get install {PEER_PACKAGES.get(name, name)} "
            "(scripts/test installs it)"
        )
    return path


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.setdefault("COLUMNS", "200")
    e.update(extra)
    return e


def run(
    *args: str, timeout: float = 20, input: bytes | None = None, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run ``netkit ARGS`` to completion (bounded)."""
    return subprocess.run(
        [NETKIT, *args], input=input, capture_output=True, timeout=timeout, env=env(), **kw
    )


PORT_0_JSON = ("--port", "0", "--json")  # a server on an ephemeral port, events on stdout


def read_line(stream: Any, timeout: float) -> bytes:
    """One line from a pipe, waiting at most *timeout* seconds (no sleeping)."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"no line within {timeout} s (got {buf!r})")
            chunk = os.read(fd, 1)  # byte by byte: never read past the line
            if not chunk:
                raise EOFError(f"pipe closed (got {buf!r})")
            buf += chunk
    return buf


class Server:
    """A real netkit server process, on the port its arguments name (``--port 0``).

    The port comes from its first line: the ``listening`` event on stdout
    (``--json``), or with *human* the ``listening on ...`` banner on stderr.
    With *collect*, threads read stdout (JSON events) and stderr from then on,
    so a server that logs a lot never blocks on a full pipe, and the test
    waits on :attr:`events` (:meth:`of`, :meth:`wait_for`, :meth:`wait_count`);
    the server then runs in a session of its own, and leaving the ``with``
    block kills the whole group.  Without it, :meth:`next_event` reads the
    next line and the test may read ``proc.stdout`` / ``proc.stderr`` itself.
    """

    def __init__(
        self,
        *args: str,
        timeout: float = 10,
        human: bool = False,
        collect: bool = False,
        **popen: Any,
    ) -> None:
        self.args = [NETKIT, *args]
        self.collect = collect
        if collect:
            popen.setdefault("start_new_session", True)  # cleanup reaches any child
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env(),
            **popen,
        )
        self.pid = self.proc.pid
        self._session = bool(popen.get("start_new_session"))
        self.took = 0.0  # seconds the last stop() waited
        try:
            line = read_line(self.proc.stderr if human else self.proc.stdout, timeout)
        except (TimeoutError, EOFError):
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=5)
            raise AssertionError(f"{args} did not start: {err.decode(errors='replace')}") from None
        self.first_line = line.decode(errors="replace")  # the banner, or the listening event
        if human:
            m = re.search(r"listening on (tcp|udp) (.*):(\d+)", line.decode(errors="replace"))
            assert m, line
            self.listening: dict[str, Any] = {
                "event": "listening",
                "transport": m.group(1),
                "host": m.group(2).strip("[]"),
                "port": int(m.group(3)),
            }
        else:
            self.listening = json.loads(line)
        assert self.listening["event"] == "listening", self.listening
        self.host: str = self.listening["host"]
        self.port: int = self.listening["port"]
        self.events: list[dict[str, Any]] = []
        self.stdout_lines: list[bytes] = []
        self.stderr_lines: list[tuple[float, bytes]] = []  # (monotonic time, line)
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []
        if collect:
            self._readers = [
                threading.Thread(target=self._read_out, daemon=True),
                threading.Thread(target=self._read_err, daemon=True),
            ]
            for t in self._readers:
                t.start()

    # -- collect: what the reader threads saw ------------------------------
    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), True)
        for line in self.proc.stdout:
            with self._cond:
                self.stdout_lines.append(line)
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), True)
        for line in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append((time.monotonic(), line))
                self._cond.notify_all()

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: pred(self.events), timeout):
                raise AssertionError(f"timed out ({timeout} s) waiting for {what}")

    def wait_count(self, kind: str, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        self.wait_for(lambda evs: sum(e["event"] == kind for e in evs) >= n, timeout, f"{n} {kind}")
        return self.of(kind)

    @property
    def stderr(self) -> bytes:
        with self._cond:
            return b"".join(line for _t, line in self.stderr_lines)

    # -- without collect ---------------------------------------------------
    def next_event(self, timeout: float = 5) -> dict[str, Any]:
        assert not self.collect, "a collecting Server's events are in .events"
        line = read_line(self.proc.stdout, timeout)
        event: dict[str, Any] = json.loads(line)
        return event

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5) -> tuple[int, bytes, bytes]:
        """Signal the server, wait for it (bounded); (exit code, rest of stdout, stderr).

        With *collect*, "rest of stdout" is every line after the first.
        """
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        try:
            if self.collect:
                self.proc.wait(timeout)
                out, err = b"", b""
            else:
                for f in (self.proc.stdout, self.proc.stderr):
                    os.set_blocking(f.fileno(), True)
                out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.args} did not stop within {timeout} s") from None
        self.took = time.monotonic() - t0
        if self.collect:
            for t in self._readers:
                t.join(5)
            with self._cond:
                out, err = b"".join(self.stdout_lines), self.stderr
        return self.proc.returncode, out, err

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            if not self.collect:
                self.proc.communicate(timeout=5)
            else:
                self.proc.wait(5)
        if self._session:
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


def read_pty(args: list[str], e: dict[str, str], *, columns: int | None = None) -> bytes:
    """Run *args* with stdout and stderr on a pseudo-terminal (*columns* wide
    when given); return what it wrote, within 20 s."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    controller, terminal = pty.openpty()
    if columns is not None:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(args, stdout=terminal, stderr=terminal, env=e)
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=10)
    os.close(controller)
    return out


@contextlib.contextmanager
def services_running(servers: dict[str, Service]) -> Iterator[dict[str, int]]:
    """Start each service (in this process, on its port 0); yield each one's port
    by name; stop them all."""
    for server in servers.values():
        server.start()
    try:
        yield {name: server.address[1] for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()

"""Test helpers: run the real netkit process, wait on sockets and pipes with timeouts."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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
}


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
    """A real ``netkit ... --json`` server process on port 0.

    ``port`` comes from its first line, the ``listening`` event.
    """

    def __init__(self, *args: str, timeout: float = 10, **popen: Any) -> None:
        self.args = [NETKIT, *args]
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env(),
            **popen,
        )
        try:
            line = read_line(self.proc.stdout, timeout)
        except (TimeoutError, EOFError):
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=5)
            raise AssertionError(f"{args} did not start: {err.decode(errors='replace')}") from None
        self.listening: dict[str, Any] = json.loads(line)
        assert self.listening["event"] == "listening", self.listening
        self.host: str = self.listening["host"]
        self.port: int = self.listening["port"]

    def next_event(self, timeout: float = 5) -> dict[str, Any]:
        line = read_line(self.proc.stdout, timeout)
        event: dict[str, Any] = json.loads(line)
        return event

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5) -> tuple[int, bytes, bytes]:
        """Signal the server, wait for it (bounded); (exit code, rest of stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stdout.fileno(), True)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)
            raise AssertionError(f"{self.args} did not stop within {timeout} s") from None
        return self.proc.returncode, out, err

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)

"""Run a peer program (ncat, socat, nc, ...) for an interop test, and always stop it.

The peer runs in its own session so that what it forks (socat ``fork``,
ncat ``--exec``) is stopped with it: the group is signalled by the id of
the process this test started, then waited for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any

from tests.helpers import read_line


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PeerProcess:
    def __init__(
        self, argv: list[str], *, ready: bytes | None = None, timeout: float = 10, **kw: Any
    ):
        kw.setdefault("stdin", subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw
        )
        self.argv = argv
        if ready is not None:
            seen = b""
            try:
                for _ in range(20):  # bounded: the ready line comes within a few lines
                    line = read_line(self.proc.stderr, timeout)
                    seen += line
                    if ready in line:
                        break
                else:
                    raise AssertionError(f"{argv[0]} never said {ready!r}: {seen!r}")
            except (TimeoutError, EOFError) as exc:
                self.close()
                raise AssertionError(f"{argv[0]} did not start: {exc}") from None

    def close(self) -> tuple[bytes, bytes]:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc.stdin is not None and self.proc.stdin.closed:
            self.proc.stdin = None  # the test closed it (EOF for the peer)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                os.set_blocking(stream.fileno(), True)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate(timeout=5)
        try:  # anything it forked is gone too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return out, err

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

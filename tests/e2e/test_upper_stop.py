"""Stopping upper-server from a terminal: Ctrl-C, what it says, Ctrl-C again.

The server runs on a pseudo-terminal that is its controlling terminal
(``setsid -c``), so writing ``\\x03`` is a real Ctrl-C: the terminal echoes
``^C`` and sends SIGINT, as for a person at the keyboard.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

import pytest

from tests.helpers import NETKIT, env
from tests.stream_util import connect, recv_line

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
LIVE = re.compile(rb"open (\d+), total (\d+), lines (\d+)")


class Terminal:
    def __init__(self, args: list[str]) -> None:
        import pty

        self.controller, terminal = pty.openpty()
        self.proc = subprocess.Popen(
            ["setsid", "-w", "-c", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=env(COLUMNS="132"),
        )
        os.close(terminal)
        self.out = b""

    def read_until(self, pattern: bytes | None, timeout: float = 15) -> re.Match[bytes] | None:
        """Read until *pattern* is in the output (ANSI codes left out); None at EOF.

        With *pattern* None: read to the end (every process left the terminal).
        """
        deadline = time.monotonic() + timeout
        while pattern is None or (found := re.search(pattern, self.text())) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout} s in {self.text()!r}")
            ready, _, _ = select.select([self.controller], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:  # EIO: every process on the terminal left
                chunk = b""
            if not chunk:
                return None
            self.out += chunk
        return found

    def text(self) -> bytes:
        return ANSI.sub(b"", self.out)

    def type(self, data: bytes) -> None:
        os.write(self.controller, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.controller)


@pytest.mark.parametrize("mode", ["thread", "fork", "async", "async --loop asyncio"])
def test_ctrl_c_says_what_it_waits_for_and_ctrl_c_again_stops_now(mode: str) -> None:
    term = Terminal(
        [NETKIT, "upper-server", "serve", "--port", "0", "--mode", *mode.split(), "--grace", "30"]
    )
    try:
        found = term.read_until(rb"listening on tcp 127\.0\.0\.1:(\d+)")
        assert found is not None
        with connect(("127.0.0.1", int(found.group(1)))) as sock:
            sock.sendall(b"one\nabc")  # a line answered, one begun: a busy connection
            assert recv_line(sock) == b"ONE\n"
            term.read_until(rb"lines 1")  # the live line shows it
            term.type(b"\x03")
            term.read_until(rb"\(Ctrl-C again to close them now\)")
            started = time.monotonic()
            term.type(b"\x03")
            term.read_until(None, timeout=20)
            assert term.proc.wait(timeout=10) == 0
            took = time.monotonic() - started
    finally:
        term.close()
    assert took < 20  # not the 30 s of --grace
    text = term.text()
    lines = re.split(rb"[\r\n]+", text)
    stopping = b"netkit: info: stopping: waiting up to 30 s for 1 busy connection "
    assert any(line.startswith(stopping) for line in lines), text
    assert b"^Cnetkit" not in text and b"^Cstopped" not in text  # each on a line of its own
    [summary] = [line for line in lines if line.startswith(b"stopped by SIGINT: ")]
    assert b"connections 1" in summary and b"lines 1" in summary and b"; up " in summary
    assert b"handled" not in summary  # the same number as connections
    drawn = LIVE.findall(text)
    assert drawn[-1] == (b"0", b"1", b"1")  # the last live line drawn is the final count

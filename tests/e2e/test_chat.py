"""upper-server chat: how a session ends as the server sees it (issue 14 item 8:
Ctrl-D is `eof`, not `empty line`)."""

from __future__ import annotations

import os
import select
import subprocess
import time

import pytest

from tests.helpers import NETKIT, Server, env, run


def _disconnect(srv: Server) -> dict[str, object]:
    for _ in range(10):
        event = srv.next_event()
        if event["event"] == "disconnect":
            return event
    raise AssertionError("no disconnect event")


@pytest.mark.parametrize(
    "typed, reason", [(b"hi\n", "eof"), (b"hi\n\n", "empty line"), (b"hi", "eof")]
)
def test_chat_ends_the_session_as_typed(typed: bytes, reason: str) -> None:
    with Server("upper-server", "serve", "--port", "0", "--json", "--count", "1") as srv:
        res = run("upper-server", "chat", "-p", str(srv.port), input=typed)
        assert res.returncode == 0, res.stderr
        assert res.stdout == b"HI\n"
        assert _disconnect(srv)["reason"] == reason
        # --count 1: it ends by itself (and its pipes are closed); waited for, not
        # raced: a client that exits quickly leaves it a few ms to get there
        srv.proc.wait(timeout=10)
        assert srv.stop()[0] == 0


class _Terminal:
    """netkit with stdin, stdout and stderr on one pseudo-terminal (bounded reads)."""

    def __init__(self, *args: str) -> None:
        import pty

        self.controller, terminal = pty.openpty()
        self.proc = subprocess.Popen(
            [NETKIT, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env()
        )
        os.close(terminal)
        self.seen = b""

    def expect(self, wanted: bytes, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.controller], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"{wanted!r} not seen within {timeout} s: {self.seen!r}")
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {wanted!r}: {self.seen!r}")
            self.seen += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.controller, keys)

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            os.close(self.controller)


def test_chat_on_a_terminal_edits_lines_and_ctrl_d_is_eof() -> None:
    with Server("upper-server", "serve", "--port", "0", "--json", "--count", "1") as srv:
        term = _Terminal("upper-server", "chat", "-p", str(srv.port), "--no-color")
        try:
            term.expect(b"> ")
            # "helo", cursor left, "l": readline makes it "hello"
            term.type(b"helo\x1b[Dl\r")
            term.expect(b"HELLO")
            term.expect(b"> ", timeout=10)
            term.type(b"up\r")
            term.expect(b"UP")
            term.type(b"\x1b[A\x1b[A\r")  # up twice: the first line again
            term.expect(b"HELLO\r\n> ")  # (echoed input then the reply)
            term.type(b"\x04")  # Ctrl-D at an empty prompt
        finally:
            code = term.close()
        assert code == 0, term.seen
        assert b"Traceback" not in term.seen
        assert _disconnect(srv)["reason"] == "eof"
        srv.stop()


def test_chat_on_a_terminal_ends_when_the_server_goes_away() -> None:
    with Server("upper-server", "serve", "--port", "0", "--idle-timeout", "0.5", "--json") as srv:
        term = _Terminal("upper-server", "chat", "-p", str(srv.port), "--no-color")
        try:
            term.expect(b"> ")
            # no typing: the server closes the idle connection while chat waits at the prompt
            term.expect(b"closed the connection", timeout=10)
        finally:
            code = term.close()
        assert code == 1, term.seen
        assert b"Traceback" not in term.seen
        srv.stop()

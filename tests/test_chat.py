"""upper-server chat: how a session ends as the server sees it (issue 14 item 8:
Ctrl-D is `eof`, not `empty line`)."""

from __future__ import annotations

import pytest

from tests.helpers import Server, run


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
        assert srv.stop()[0] == 0  # --count 1: it ends by itself (and its pipes are closed)

"""Issue 14 item 25: one name for one concept across commands, and README's one
JSON events table names every field a command really emits."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from netkit.events import Recorder
from netkit.services.tcp_time import TimeServer
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.helpers import Server, run

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def _json_lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def emitted() -> list[dict[str, Any]]:
    """JSON events of the clients and servers, from the real commands."""
    events: list[dict[str, Any]] = []
    with (
        UdpEchoServer(Recorder(), port=0) as echo,
        UpperServer(Recorder(), port=0) as upper,
        UpperServer(Recorder(), port=0, udp=True) as upper_udp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        for argv in (
            ["udp-echo", "send", "-p", str(echo.address[1]), "hi"],
            ["upper-server", "send", "-p", str(upper.address[1]), "hi"],
            ["upper-server", "send", "--udp", "-p", str(upper_udp.address[1]), "hi"],
            ["creosote", "spew", "-p", str(sink.getsockname()[1]), "hi"],
        ):
            res = run(*argv, "--json")
            assert res.returncode == 0, (argv, res.stderr)
            events += _json_lines(res.stdout)
    for protocol in ("daytime", "time"):
        with TimeServer(Recorder(), port=0, protocol=protocol) as clock:
            res = run(
                "tcp-time", "get", "--json", "--protocol", protocol, "-p", str(clock.address[1])
            )
            assert res.returncode == 0, res.stderr
            events += _json_lines(res.stdout)
    with Server("tcp-time", "serve", "--port", "0", "--json", "--count", "1") as srv:
        port = srv.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.settimeout(5)
            got = b""
            while chunk := conn.recv(512):
                got += chunk
        sent = srv.next_event()
        assert sent["event"] == "sent"
        assert sent["size"] == len(got)  # the common size is the bytes that went out
        events.append(sent)
    with Server("upper-server", "serve", "--port", "0", "--json", "--count", "1") as srv:
        port = srv.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"abc\r\n\r\n")
            conn.settimeout(5)
            while conn.recv(512):
                pass
        for _ in range(5):
            ev = srv.next_event()
            events.append(ev)
            if ev["event"] == "disconnect":
                break
    return events


def test_every_reply_names_its_peer_and_size(emitted: list[dict[str, Any]]) -> None:
    replies = [e for e in emitted if e["event"] in ("reply", "time")]
    assert len(replies) == 5
    for e in replies:
        assert re.fullmatch(r"127\.0\.0\.1:\d+", e["peer"]), e
        if "server" in e:  # the documented older name stays, and agrees
            assert e["server"] == e["peer"]
        if e["event"] == "reply":
            assert e["size"] == len(e["text"].encode())


def test_every_sent_event_has_one_schema(emitted: list[dict[str, Any]]) -> None:
    sent = [e for e in emitted if e["event"] == "sent"]
    assert len(sent) == 2  # creosote spew and tcp-time serve
    for e in sent:
        assert {"peer", "transport", "size"} <= e.keys(), e
        assert isinstance(e["size"], int) and e["size"] > 0


def test_line_has_size(emitted: list[dict[str, Any]]) -> None:
    (line,) = [e for e in emitted if e["event"] == "line"]
    assert line["size"] == line["length"] == 3


def _readme_fields() -> dict[str, set[str]]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### JSON events") :]
    table = table[: table.index("\n## ")]
    fields: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = row.split(" | ")
        if not row.startswith("| `") or len(cells) < 3:
            continue
        names = re.findall(r"`([a-z_0-9]+)`", cells[0])
        for name in names:
            fields.setdefault(name, set()).update(re.findall(r"`([a-z_0-9]+)`", cells[2]))
    return fields


def test_readme_has_one_events_table_naming_every_field(emitted: list[dict[str, Any]]) -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count("| event | fields |") == 0  # no second, partial table
    documented = _readme_fields()
    for e in emitted:
        missing = set(e) - {"event"} - documented.get(e["event"], set())
        assert not missing, (e["event"], missing)

"""Issue 14 item 7: output to a stream whose encoding has no Unicode
(PYTHONIOENCODING=ascii) is ASCII: the renderers' glyphs transliterated,
other text as \\uNNNN, never a UnicodeEncodeError."""

from __future__ import annotations

import subprocess

from netkit.events import Recorder
from netkit.services.udp_echo import UdpEchoServer
from tests.helpers import NETKIT, env


def _ascii_run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [NETKIT, *args],
        capture_output=True,
        timeout=120,
        env=env(PYTHONIOENCODING="ascii", NO_COLOR="1"),
    )


def test_demo_addresses_in_ascii() -> None:
    res = _ascii_run("demo", "addresses")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout.decode("ascii")  # raises if anything else got through
    res.stderr.decode("ascii")
    assert "Traceback" not in res.stderr.decode()
    assert "\n  ok " in out  # a claim that holds, its mark in ASCII
    assert "---" in out  # the rule under the title


def test_payloads_in_ascii_are_escaped_not_a_crash() -> None:
    with UdpEchoServer(Recorder(), port=0) as server:
        res = _ascii_run("udp-echo", "send", "-p", str(server.address[1]), "wörld", "\U0001d11e")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"W\\u00f6RLD\n\\U0001d11e\n"

"""Untrusted payloads in udp-echo and creosote output: the escaping corpus.

Terminal sequences (CSI, OSC 52, OSC 8), rich markup, NUL, CR, bidi
controls and invalid UTF-8 must come out as inert text: never a raw ESC on
stdout, stderr or in the log file, one datagram = one line, no markup taking
effect.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from netkit.events import Event
from netkit.events.creosote import IncompleteMessage, Message
from netkit.events.udp_echo import Datagram, Reply
from netkit.protocols import syslog
from netkit.protocols.text import payload_bytes
from netkit.render.human import HumanRenderer
from netkit.render.jsonl import JsonRenderer
from netkit.services.creosote import message_line
from tests.hostile import CORPUS


def events_for(data: bytes) -> list[Event]:
    t = "2026-11-25T18:00:00.000+00:00"
    sl = syslog.parse(b"<13>Nov 25 18:49:08 vm app: " + data)
    assert sl is not None
    return [
        Datagram(peer="127.0.0.1:5000", size=len(data), data=data),
        Reply(peer="127.0.0.1:11111", size=len(data), data=data, rtt_ms=0.1),
        Message(time=t, peer="127.0.0.1:5000", data=data, bytes=len(data)),
        Message(
            time=t,
            peer="127.0.0.1:5000",
            data=b"<13>Nov 25 18:49:08 vm app: " + data,
            bytes=len(data) + 28,
            syslog=sl.as_dict(),
        ),
        IncompleteMessage(
            time=t,
            peer="127.0.0.1:5000",
            id="0badcafe",
            data=data,
            bytes=len(data),
            received=1,
            total=2,
            missing=[2],
            reason="timeout",
        ),
    ]


def human(terminal: bool) -> tuple[HumanRenderer, io.StringIO, io.StringIO]:
    r = HumanRenderer()
    out, err = io.StringIO(), io.StringIO()
    for name, f in (("out", out), ("err", err)):
        setattr(
            r,
            name,
            Console(
                file=f,
                force_terminal=terminal,
                color_system="truecolor" if terminal else None,
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
            ),
        )
    return r, out, err


@pytest.mark.parametrize("data", CORPUS)
def test_human_output_is_inert(data: bytes) -> None:
    r, out, err = human(terminal=False)
    for ev in events_for(data):
        r(ev)
    text = out.getvalue() + err.getvalue()
    assert "\x1b" not in text and "\x00" not in text and "\r" not in text
    assert "\x9b" not in text and "\u202e" not in text
    # one line per event (Reply, Message x2, Incomplete, log), a multi-line message's
    # further lines indented beneath it (never starting like a line of its own)
    lines = text.splitlines()
    assert len([line for line in lines if not line.startswith("    ")]) == 5
    breaks = data.rstrip(b"\n").count(b"\n")
    assert len(lines) == 5 + 3 * breaks
    if data.startswith(b"["):
        assert data.decode() in text  # rich markup: shown, not interpreted


@pytest.mark.parametrize("data", CORPUS)
def test_on_a_terminal_only_our_own_styles_are_sent(data: bytes) -> None:
    r, out, err = human(terminal=True)
    for ev in events_for(data):
        r(ev)
    text = out.getvalue() + err.getvalue()
    assert "\x1b]" not in text  # no OSC at all: rich styles use CSI ... m only
    assert "\x07" not in text and "\x00" not in text
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", text)  # our own SGR styles
    assert "\x1b" not in stripped


@pytest.mark.parametrize("data", CORPUS)
def test_json_is_ascii_and_exact(data: bytes) -> None:
    buf = io.StringIO()
    JsonRenderer(out=buf, err=io.StringIO())(
        Message(time="t", peer="p", data=data, bytes=len(data))
    )
    line = buf.getvalue()
    assert line.isascii() and line.count("\n") == 1
    assert payload_bytes(json.loads(line)) == data


@pytest.mark.parametrize("data", CORPUS)
def test_log_file_line_is_one_inert_line(data: bytes) -> None:
    line = message_line("2026-11-25T18:00:00.000+00:00", "127.0.0.1:5000", data)
    assert line.endswith("\n") and line.count("\n") == 1
    assert "\x1b" not in line and "\r" not in line and "\x00" not in line and "\x9b" not in line


SYSLOG_BAD_UTF8 = [
    b"<13>Dec  3 09:00:00 h\xffost ap\xffp[12]: hello \xff",
    b'<14>1 2026-12-03T09:00:00Z h\xffost ap\xffp 12 ID47 [ex\xffa@1 k="v\xff"] hello \xff',
]


@pytest.mark.parametrize("frame", SYSLOG_BAD_UTF8, ids=["rfc3164", "rfc5424"])
def test_syslog_fields_are_escaped_once(frame: bytes) -> None:
    """Issue 14 item 3: an invalid byte in a syslog host or app name is shown ``\\xff``
    (one backslash) like the message's own, the RFC 3164 tag keeps its app name and
    pid, and JSON holds no lone surrogate (the exact bytes are ``data_b64``)."""
    parsed = syslog.parse(frame)
    assert parsed is not None
    assert (parsed.host, parsed.app, parsed.procid) == ("h\udcffost", "ap\udcffp", "12")
    assert (parsed.host or "").encode("utf-8", "surrogateescape") == b"h\xffost"
    ev = Message(
        time="2026-12-03T09:00:00.000+00:00",
        peer="127.0.0.1:5000",
        data=frame,
        bytes=len(frame),
        syslog=parsed.as_dict(),
        dialect=parsed.format,
        logger=parsed.app,
    )
    r, out, _ = human(terminal=False)
    r(ev)
    shown = out.getvalue()
    assert "h\\xffost ap\\xffp[12]: hello \\xff" in shown, shown
    assert "\\\\" not in shown
    buf = io.StringIO()
    JsonRenderer(out=buf, err=io.StringIO())(ev)
    line = buf.getvalue()
    assert line.isascii() and "\\ud" not in line
    obj = json.loads(line)
    assert obj["syslog"]["host"] == "h\\xffost" and obj["logger"] == "ap\\xffp"
    assert obj["syslog"]["procid"] == "12"
    assert payload_bytes(obj) == frame

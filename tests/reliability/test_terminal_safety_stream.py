"""Terminal safety of the stream renderers: hostile bytes through a real
upper-server (its human log), `upper-server send` / `chat` and `tcp-time get`.
Issue 6, item 11 (the stream half; udp-echo, creosote and resolve are with
the datagram half).
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NETKIT, env, read_line
from tests.hostile import LINES as CORPUS
from tests.hostile import raw_controls
from tests.profiles import examples

SGR = re.compile(r"\x1b\[[0-9;]*m")
# with colour forced, rich thinks stderr is a terminal and draws the live
# summary line: these cursor controls are its own (network bytes never come
# out raw: the piped run checks that no ESC at all is written)
RICH_CONTROLS = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\r?\x1b\[2K|\x1b\[1A|\r(?=\x1b)")


def assert_inert(text: bytes, *, colour: bool = False) -> str:
    """No raw ESC, C0 (but LF), DEL, C1 or bidi character in *text*, which is UTF-8."""
    decoded = text.decode("utf-8")  # escape() leaves only valid UTF-8
    if colour:
        decoded = RICH_CONTROLS.sub("", decoded)  # rich's own styling, when forced on
    bad = raw_controls(decoded, allow="\n")
    assert not bad, (sorted(set(bad)), decoded[:2000])
    return decoded


def _serve(extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [NETKIT, "upper-server", "serve", "--port", "0", "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env(**extra_env),
    )
    first = read_line(proc.stderr, 10).decode()
    m = re.search(r":(\d+) ", SGR.sub("", first))
    assert m, first
    return proc, int(m.group(1))


@pytest.mark.parametrize("colour", [False, True], ids=["piped", "forced-colour"])
def test_corpus_through_upper_server_log_send_and_chat_stays_inert(colour: bool) -> None:
    """Item 11: every corpus line through serve (human log), send and chat:
    0 raw ESC / C1 / bidi / control characters on stdout or stderr, and one
    line in is one log line and one output line (no forged lines)."""
    extra = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if colour else {"NO_COLOR": "1"}
    server, port = _serve(extra)
    try:
        stdin = b"".join(line + b"\n" for line in CORPUS)
        outputs = {}
        for cmd in ("send", "chat"):
            args = [NETKIT, "upper-server", cmd, "-p", str(port)] + (["-"] if cmd == "send" else [])
            proc = subprocess.run(
                args, input=stdin, capture_output=True, timeout=20, env=env(**extra)
            )
            assert proc.returncode == 0, proc.stderr
            outputs[cmd] = proc
        _out, log = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=5)
    assert server.returncode == 0
    for cmd, proc in outputs.items():
        out = assert_inert(proc.stdout, colour=colour)
        assert_inert(proc.stderr, colour=colour)
        lines = out.splitlines()
        assert len(lines) == len(CORPUS), (cmd, lines)
        assert "[LINK=HTTP://X]CLICK[/LINK]" in lines
        assert "[/BOLD] CLOSES" in lines and "[/] CLOSES ALL" in lines
        assert "OK\\rFAKE 12:00 ADMIN LOGIN" in lines
        assert not any(line.startswith("FAKE") for line in lines)
    text = assert_inert(log, colour=colour)
    if colour:  # the live summary line, redrawn before each log line
        text = re.sub(r"open \d+, total \d+, lines \d+", "", text)
    log_lines = [line for line in text.split("\n") if line]
    line_events = [line for line in log_lines if " > " in line]
    assert len(line_events) == 2 * len(CORPUS), log_lines
    assert sum("ok\\rFAKE 12:00 admin login" in line for line in line_events) == 2
    assert sum("[link=http://x]click[/link]" in line for line in line_events) == 2
    assert not any(line.startswith("FAKE") for line in log_lines)
    # (connect, N lines, disconnect) x 2 + summary: nothing else
    assert len(log_lines) == 2 * (len(CORPUS) + 2) + 1, log_lines


def _daytime_peer(replies: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A hostile daytime server: each connection gets the next reply."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(20)

    def serve() -> None:
        for reply in replies:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock, t


def test_corpus_as_daytime_replies_through_tcp_time_get_stays_inert() -> None:
    """Item 11: each corpus line as a daytime reply to `tcp-time get`: output
    inert, one line on stdout per reply."""
    replies = [line + b"\r\n" for line in CORPUS]
    lsock, t = _daytime_peer(replies)
    with lsock:
        port = lsock.getsockname()[1]
        for reply in replies:
            proc = subprocess.run(
                [NETKIT, "tcp-time", "get", "-p", str(port)],
                capture_output=True,
                timeout=10,
                env=env(NO_COLOR="1"),
            )
            assert proc.returncode in (0, 1), proc.stderr
            assert b"Traceback" not in proc.stderr
            out = assert_inert(proc.stdout)
            assert_inert(proc.stderr)
            if proc.returncode == 0:
                assert len(out.splitlines()) == 1, (reply, out)
        t.join(5)


@settings(max_examples=examples(10_000), deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_through_stream_renderers_stay_inert(data: bytes) -> None:
    """Item 11: 10,000 random byte strings as a line, a reply, a datagram and a
    daytime text through the human stream renderers: inert, one line each."""
    from rich.console import Console

    from netkit.events.tcp_time import TimeReceived
    from netkit.events.upper_server import LineEvent, LineReply, UpperDatagram
    from netkit.protocols.text import decode
    from netkit.render.human import HumanRenderer

    r = HumanRenderer(no_color=True)
    out, err = io.StringIO(), io.StringIO()
    r.out = Console(file=out, markup=False, highlight=False, emoji=False, soft_wrap=True)
    r.err = Console(file=err, markup=False, highlight=False, emoji=False, soft_wrap=True)
    r(LineEvent("127.0.0.1:1", data, len(data)))
    r(UpperDatagram(peer="127.0.0.1:1", size=len(data), data=data))
    r(LineReply(sent="x", data=data, server="127.0.0.1:2"))
    r(
        TimeReceived(
            protocol="daytime",
            unix=None,
            text=decode(data),
            offset_seconds=None,
            server="127.0.0.1:3",
            transport="tcp",
            zone="",
        )
    )
    o = assert_inert(out.getvalue().encode())
    e = assert_inert(err.getvalue().encode())
    assert len(o.splitlines()) == 2  # the reply, the time
    assert len(e.splitlines()) == 3  # the line, the datagram, the time's note

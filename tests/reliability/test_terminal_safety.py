"""Terminal safety (item 11): hostile bytes never reach a terminal or a log file raw.

The corpus goes through the real processes on a pseudo-terminal (so rich
believes it talks to a terminal and uses colour): udp-echo serve's log,
udp-echo send's output, creosote listen's output and log file, resolve with
a DNS server of the test's own.  Then 10,000 hypothesis byte strings go
through every datagram renderer function directly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
import tty
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netkit.events import Event, Notice
from netkit.events.creosote import IncompleteMessage, Message
from netkit.events.resolve import Resolved
from netkit.events.udp_echo import Datagram, Reply
from netkit.protocols import syslog
from netkit.protocols.text import escape
from netkit.render.human import HumanRenderer
from netkit.render.jsonl import JsonRenderer
from netkit.services.creosote import message_line
from tests.helpers import NETKIT, env
from tests.hostile import CORPUS, raw_controls, serve_hostile_dns
from tests.profiles import examples

SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours on a terminal


def check_terminal(output: bytes, where: str) -> str:
    """Valid UTF-8, and after removing rich's colour codes no ESC, C1, bidi, NUL or CR."""
    text = output.decode("utf-8")  # strict: everything shown is valid UTF-8
    plain = SGR.sub("", text)
    bad = raw_controls(plain)
    assert not bad, f"{where}: raw {sorted(set(bad))!r} in {plain!r}"
    assert not any(line.startswith("FAKE") for line in plain.splitlines()), where
    return plain


def check_escaped(plain: str, corpus: list[bytes], where: str) -> None:
    """Each payload appears escaped (so not raw: the colour filter hid nothing)."""
    for data in corpus:
        assert escape(data) in plain, f"{where}: {escape(data)!r} not shown"


def shown_lines(data: bytes) -> list[str]:
    """A message as creosote listen shows it: its lines, each escaped on its own.

    (A final newline makes no empty line; CR LF is one break.)
    """
    text = data.decode("utf-8", "surrogateescape")
    text = text[:-1] if text.endswith("\n") else text
    return [escape(line.removesuffix("\r")) for line in text.split("\n")]


class PtyRun:
    """A real process with stdout and stderr on a raw pseudo-terminal (no CR added)."""

    def __init__(self, argv: list[str], stdin: Any = subprocess.DEVNULL) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no \n -> \r\n translation: every CR would be the program's
        self.master = master
        self.proc = subprocess.Popen(
            argv, stdin=stdin, stdout=slave, stderr=slave, env=env(TERM="xterm-256color")
        )
        os.close(slave)
        os.set_blocking(master, False)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float = 10) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.master, selectors.EVENT_READ)
            while (m := re.search(pattern, self.output)) is None:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"{pattern!r} not seen: {self.output!r}")
                if not self._read():
                    raise EOFError(f"{pattern!r} not seen before exit: {self.output!r}")
        return m

    def _read(self) -> bool:
        try:
            chunk = os.read(self.master, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the other side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def finish(self, sig: int | None = signal.SIGTERM, timeout: float = 10) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:  # read while it runs: a full pty blocks it
            sel.register(self.master, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(0.5) and not self._read():
                    break  # EOF: every writer is gone
                if self.proc.poll() is not None and not sel.select(0):
                    break
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        os.close(self.master)
        return code

    def __enter__(self) -> PtyRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        try:
            os.close(self.master)
        except OSError:
            pass


def _listening_port(run: PtyRun) -> int:
    return int(run.read_until(rb"listening on (?:\x1b\[[0-9;]*m)?udp [^\n]*?:(\d+)").group(1))


def test_corpus_udp_echo_serve_log_on_a_terminal() -> None:
    """18 hostile payloads: udp-echo serve's log shows each escaped, 1 line per datagram."""
    with PtyRun([NETKIT, "udp-echo", "serve", "--plain", "--port", "0"]) as run:
        port = _listening_port(run)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            for data in CORPUS:
                s.send(data)
                assert s.recv(70_000) == data  # answered: the log line was written before
        code = run.finish()
    assert code == 0
    plain = check_terminal(run.output, "udp-echo serve")
    check_escaped(plain, CORPUS, "udp-echo serve")
    lines = plain.splitlines()
    logged = [ln for ln in lines if re.match(r"\d\d:\d\d:\d\d 127\.0\.0\.1:\d+ \d+ B ", ln)]
    assert len(logged) == len(CORPUS)
    assert len(lines) == len(CORPUS) + 2  # listening, one per datagram, summary


def test_corpus_udp_echo_send_output_on_a_terminal() -> None:
    """A server answering with the corpus: udp-echo send prints 18 escaped lines, exit 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake:
        fake.bind(("127.0.0.1", 0))
        fake.settimeout(10)

        def answer() -> None:
            for _ in CORPUS:  # request "N" gets CORPUS[N]
                try:
                    request, addr = fake.recvfrom(100)
                except OSError:
                    return
                fake.sendto(CORPUS[int(request)], addr)

        server = threading.Thread(target=answer, daemon=True)
        server.start()
        stdin = "".join(f"{i}\n" for i in range(len(CORPUS))).encode()
        reader, writer = os.pipe()
        os.write(writer, stdin)
        os.close(writer)
        with PtyRun(
            [NETKIT, "udp-echo", "send", "-p", str(fake.getsockname()[1]), "-t", "5", "-"],
            stdin=reader,
        ) as run:
            os.close(reader)
            code = run.finish(sig=None)
        server.join(10)
    assert code == 0, run.output
    plain = check_terminal(run.output, "udp-echo send")
    check_escaped(plain, CORPUS, "udp-echo send")
    # one line per reply; stdout and stderr share the terminal, and stderr
    # has each reply's size, source and round-trip time
    rtt = re.compile(r"\d+ B from 127\.0\.0\.1:\d+ in [0-9.]+ ms")
    replies = [line for line in plain.splitlines() if not rtt.fullmatch(line)]
    assert replies == [escape(d) for d in CORPUS]
    assert len(plain.splitlines()) == 2 * len(CORPUS)


def test_corpus_creosote_listen_terminal_and_log_file(tmp_path: Path) -> None:
    """creosote listen: 18 escaped lines on the terminal and 18 in the log, none raw."""
    log = tmp_path / "debug.log"
    argv = [NETKIT, "creosote", "listen", "--port", "0", "--count", str(len(CORPUS))]
    with PtyRun([*argv, "--logfile", str(log)]) as run:
        port = _listening_port(run)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in CORPUS:
                s.sendto(data, ("127.0.0.1", port))
        code = run.finish(sig=None)  # --count: stops by itself
    assert code == 0, run.output
    plain = check_terminal(run.output, "creosote listen")
    for data in CORPUS:  # a multi-line message is shown as its lines, each escaped
        for line in shown_lines(data):
            assert line in plain, f"creosote listen: {line!r} not shown"
    shown = [ln for ln in plain.splitlines() if re.match(r"\d\d:\d\d:\d\d 127\.0\.0\.1:", ln)]
    assert len(shown) == len(CORPUS)
    further = [ln for ln in plain.splitlines() if ln.startswith("    ")]
    assert len(further) == sum(len(shown_lines(d)) - 1 for d in CORPUS)
    data = log.read_bytes()
    assert b"\x1b" not in data
    logged = check_terminal(data, "log file").splitlines()
    assert len(logged) == len(CORPUS)
    assert [ln.split(" ", 2)[2] for ln in logged] == [escape(d) for d in CORPUS]


# -- resolve: a DNS server of the test's own answers with hostile names -----------


@pytest.mark.parametrize(
    "args",
    [["--type", "TXT", "hostile.example"], ["192.0.2.7"]],
    ids=["txt", "ptr"],
)
def test_corpus_resolve_server_answers_on_a_terminal(args: list[str]) -> None:
    """resolve --server: 18 hostile TXT strings / PTR names, none raw on the terminal."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns_sock:
        dns_sock.bind(("127.0.0.1", 0))
        dns_sock.settimeout(0.2)
        stop = threading.Event()
        server = threading.Thread(target=serve_hostile_dns, args=(dns_sock, stop), daemon=True)
        server.start()
        try:
            where = f"127.0.0.1:{dns_sock.getsockname()[1]}"
            with PtyRun([NETKIT, "resolve", "--server", where, "-t", "5", *args]) as run:
                code = run.finish(sig=None)
        finally:
            stop.set()
            server.join(5)
    assert code == 0, run.output
    plain = check_terminal(run.output, "resolve")
    rows = [ln for ln in plain.splitlines() if ln.startswith(("TXT", "PTR"))]
    assert len(rows) == (1 if args[0] == "--type" else len(CORPUS))


def test_corpus_resolve_hostile_query_argument_on_a_terminal() -> None:
    """A hostile name typed as the query (OSC 52, bidi, CR): the error line shows it escaped."""
    query = "\x1b]52;c;cm0=\x07\u202egnp.exe\rFAKE"
    with PtyRun([NETKIT, "resolve", "-t", "5", query]) as run:
        code = run.finish(sig=None)
    assert code == 1
    plain = check_terminal(run.output, "resolve error")
    assert plain.count("\n") == 1 and "Traceback" not in plain


def test_corpus_resolve_human_renderer_hostile_names() -> None:
    """A Resolved event with the corpus as names, aliases, addresses and records: all escaped."""
    names = [d.decode("utf-8", "surrogateescape") for d in CORPUS]
    event = Resolved(
        query=names[0],
        kind="forward",
        canonical=names[1],
        aliases=names[2:6],
        addresses=names[6:8],
        ipv4=names[6:7],
        ipv6=names[7:8],
        fqdn=names[8],
        source="dns 127.0.0.1:53",
        records=[{"type": "TXT", "value": n, "ttl": 1} for n in names[9:]],
    )
    out = _render(event)
    plain = check_terminal(out.encode("utf-8", "surrogateescape"), "resolve renderer")
    # query, canonical, aliases, IPv4, IPv6, fqdn and the records: one row each, none
    # forged; a note too long for the terminal goes on indented lines of its own
    rows = [line for line in plain.splitlines() if not line.startswith(" ")]
    assert len(rows) == 6 + len(names[9:]), plain


# -- 10,000 hypothesis byte strings through every datagram renderer ---------------


class _TerminalBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True  # so rich uses colour, as on a terminal


def _terminal_renderer() -> tuple[HumanRenderer, io.StringIO]:
    """netkit's human renderer with both consoles writing to one buffer that is a terminal."""
    buf = _TerminalBuffer()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        r = HumanRenderer()  # its consoles look at the terminal they are made on
    for console in (r.out, r.err):
        console.file = buf
        assert console.is_terminal and console.color_system is not None
    return r, buf


_RENDERER, _BUF = _terminal_renderer()


def _render(event: Event) -> str:
    """What the human renderer writes for *event*."""
    _BUF.seek(0)
    _BUF.truncate()
    _RENDERER(event)
    return _BUF.getvalue()


def _events(data: bytes) -> list[Event]:
    peer = "127.0.0.1:4242"
    now = "2026-11-25T19:00:00.000+00:00"
    parsed = syslog.parse(data)
    text = data.decode("utf-8", "surrogateescape")
    return [
        Datagram(peer=peer, size=len(data), data=data),
        Datagram(peer=peer, size=len(data), data=data, replied=False, dropped="rate"),
        Reply(peer=peer, size=len(data), data=data, rtt_ms=0.1),
        Message(
            time=now,
            peer=peer,
            data=data,
            bytes=len(data),
            syslog=parsed.as_dict() if parsed else None,
        ),
        Message(time=now, peer=peer, data=data, bytes=len(data), chunks=3),
        IncompleteMessage(
            time=now,
            peer=peer,
            id="0badcafe",
            data=data,
            bytes=len(data),
            received=1,
            total=2,
            missing=[2],
            reason="timeout",
        ),
        Notice(level="warning", message=text),
    ]


hostile = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(CORPUS), max_size=4).map(b"".join),
    st.tuples(st.binary(max_size=40), st.sampled_from(CORPUS), st.binary(max_size=40)).map(
        b"".join
    ),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    # syslog-looking, so the syslog branch of the renderer is taken too
    st.binary(max_size=120).map(lambda b: b"<13>Nov 25 19:00:00 host app[1]: " + b),
)


@settings(
    max_examples=examples(10_000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(data=hostile)
def test_ten_thousand_byte_strings_every_datagram_renderer(data: bytes) -> None:
    """10,000 byte strings × 7 events: one line each, no raw control, JSON round trip, log line."""
    for event in _events(data):
        out = _render(event)
        plain = check_terminal(out.encode("utf-8"), type(event).__name__)
        if isinstance(event, (Message, IncompleteMessage)):
            # a message's further lines are indented beneath the first: never a record
            body = event.data
            if isinstance(event, Message) and event.syslog is not None:
                parsed_body = syslog.parse(event.data)
                assert parsed_body is not None
                body = parsed_body.message
            lines = plain.splitlines()
            assert len(lines) == len(shown_lines(body)), (event, plain)
            assert all(line.startswith("    ") for line in lines[1:]), (event, plain)
        else:
            # one line each; a reply has a second, on stderr: its size, source and RTT
            assert plain.count("\n") == (2 if isinstance(event, Reply) else 1), (event, plain)
        buf, err = io.StringIO(), io.StringIO()
        JsonRenderer(out=buf, err=err)(event)
        line, note = buf.getvalue(), err.getvalue()
        if isinstance(event, Notice):  # diagnostics: one escaped line on stderr
            assert line == "" and note.count("\n") == 1 and not raw_controls(note)
        else:  # one JSON object on stdout, pure ASCII
            assert note == "" and line.isascii() and line.count("\n") == 1
            assert json.loads(line)["event"] == event.event
    line = message_line("2026-11-25T19:00:00.000+00:00", "127.0.0.1:4242", data)
    assert line.endswith("\n") and line.count("\n") == 1
    assert not raw_controls(line[:-1]) and "\t" not in line

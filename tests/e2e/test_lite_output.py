"""The one-shot commands' lite output is rich's output, byte for byte.

netkit.render.lite writes the human output of pack-ip, resolve, udp-echo
send, tcp-time get, upper-server send and creosote spew without importing
rich.  Each command runs here for real twice, against real servers on port
0 (this process's, or a test server sending hostile text), once as users
run it and once with ``NETKIT_RENDER=rich`` (the internal switch that makes
rich write everything), on a pseudo-terminal and in pipes, under every
environment that changes what rich writes: colour on and off (NO_COLOR,
FORCE_COLOR, TERM=dumb), the width (COLUMNS, LINES, the terminal's own
size), an encoding without Unicode (the ASCII fallbacks).  The bytes must be
the same; only round-trip times and clock offsets, which differ between any
two runs, are masked.  Each run also reports whether it loaded rich: never
for lite, except in the environments lite hands to rich on purpose.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from netkit.events import Recorder
from netkit.services.core import Service
from netkit.services.creosote import CreosoteListener
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.helpers import services_running
from tests.hostile import LINES, serve_hostile_dns

#: environments that change what rich writes; each runs on a pty and in pipes
ENVS: dict[str, dict[str, str]] = {
    "default": {},
    "NO_COLOR": {"NO_COLOR": "1"},
    "FORCE_COLOR": {"FORCE_COLOR": "1"},
    "TERM=dumb": {"TERM": "dumb"},
    "COLUMNS=40": {"COLUMNS": "40"},
    "COLUMNS=80": {"COLUMNS": "80"},
    "COLUMNS=200": {"COLUMNS": "200"},
    "ascii": {"PYTHONIOENCODING": "ascii"},
    # more of rich's branches: pack-ip (the one output whose layout has a width) takes them
    "TERM=dumb FORCE_COLOR": {"TERM": "dumb", "FORCE_COLOR": "1"},
    "COLORTERM=truecolor": {"COLORTERM": "truecolor", "TERM": "xterm"},
    "COLUMNS=40 LINES=20": {"COLUMNS": "40", "LINES": "20"},
    "COLUMNS=40 TERM=dumb": {"COLUMNS": "40", "TERM": "dumb"},
    "ascii FORCE_COLOR": {"PYTHONIOENCODING": "ascii", "FORCE_COLOR": "1"},
    "latin-1 COLUMNS=40": {"PYTHONIOENCODING": "latin-1", "COLUMNS": "40"},
    # rich 13 and 14+ read these differently: lite hands them to rich
    "NO_COLOR=": {"NO_COLOR": ""},
    "FORCE_COLOR=": {"FORCE_COLOR": ""},
    "TTY_COMPATIBLE=1": {"TTY_COMPATIBLE": "1"},
}
HANDED_TO_RICH = {"NO_COLOR=", "FORCE_COLOR=", "TTY_COMPATIBLE=1"}
#: every command runs in these; pack-ip in all of ENVS
EVERY: tuple[str, ...] = ("default", "NO_COLOR", "FORCE_COLOR", "TERM=dumb", "COLUMNS=40")
EVERY += ("COLUMNS=80", "COLUMNS=200", "ascii", "ascii FORCE_COLOR")
#: hostile peer text goes through fewer (escaping does not depend on them)
HOSTILE_ENVS = ("default", "FORCE_COLOR", "ascii FORCE_COLOR")
#: what the terminal itself says its size is (rich asks it when COLUMNS is not set)
PTY_COLUMNS, PTY_ROWS = 66, 30
#: variables of the test's own environment that would change the output
CLEARED = (
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "LINES",
    "PYTHONIOENCODING",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "NETKIT_RENDER",
)

#: runs netkit's main() and writes whether rich was loaded (rich, when written for it)
WRAPPER = """
import json, os, sys
sys.argv = ["netkit", *sys.argv[1:]]
from netkit.cli import main
try:
    main()
finally:
    with open(os.environ["NETKIT_TEST_REPORT"], "w") as f:
        json.dump("rich" in sys.modules, f)
"""

#: what differs between any two runs: round-trip times, clock offsets
VARIABLE = [
    (re.compile(rb" in [0-9.e+-]+ ms"), b" in N ms"),
    # ± in UTF-8, latin-1 and the ASCII fallback
    (re.compile(rb"offset [+-][0-9]+ s (?:\xc2\xb1|\xb1|\\u00b1) [0-9]+ s"), b"offset N"),
]

#: daytime replies of the test's own time server (one server per reply)
DAYTIME = {
    "ctime": b"Thu Dec  3 10:15:00 2026\r\n",  # read as local time: an offset
    "markup": b"[bold red]styled?[/] [link=http://x]click[/link]\r\n",
    "tab": b"TIME\twith a tab\r\n",
    "unicode": "Zeit \u00fcberall \u00b1 \u2192 \u2026 \u00b7 \u4e2d\u6587\r\n".encode(),
    "csi (refused)": b"\x1b[31mred\x1b[0m\r\n",
    "invalid utf-8 (refused)": b"\xff\xfe time\r\n",
}


@dataclass
class Run:
    """What one process wrote: on a pty stdout and stderr are one stream."""

    code: int
    out: bytes
    err: bytes
    rich: bool


def _env(name: str, tmp: Path, rich: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["TERM"] = "xterm-256color"
    env.update(ENVS[name])
    if rich:
        env["NETKIT_RENDER"] = "rich"
    env["NETKIT_TEST_REPORT"] = str(tmp)
    return env


def _on_pty(argv: list[str], env: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
    controller, terminal = pty.openpty()
    tty.setraw(terminal)  # no \n -> \r\n: every byte is the program's
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLUMNS, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    seen = b""
    deadline = time.monotonic() + 30
    with selectors.DefaultSelector() as sel:
        sel.register(controller, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                continue
            try:
                chunk = os.read(controller, 1 << 16)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            seen += chunk
    os.close(controller)
    return proc.wait(timeout=max(1.0, deadline - time.monotonic())), seen


def run(args: list[str], env_name: str, *, pty_: bool, rich: bool, stdin: bytes = b"") -> Run:
    fd, report_name = tempfile.mkstemp(prefix="netkit-lite-")
    os.close(fd)
    report = Path(report_name)
    try:
        argv = [sys.executable, "-c", WRAPPER, *args]
        env = _env(env_name, report, rich)
        if pty_:
            code, out = _on_pty(argv, env, stdin)
            err = b""
        else:
            proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        loaded = json.loads(report.read_text())
    finally:
        report.unlink()
    return Run(code, _mask(out), _mask(err), loaded)


def _mask(data: bytes) -> bytes:
    for pattern, replacement in VARIABLE:
        data = pattern.sub(replacement, data)
    return data


def _width(name: str, pty_: bool) -> tuple[bool, int]:
    """Whether rich takes stdout for a terminal in this case, and its width
    (what a line with a hanging body must fit for lite to write it)."""
    env = {"TERM": "xterm-256color", **ENVS[name]}
    terminal = pty_ or bool(env.get("FORCE_COLOR"))
    columns, lines = env.get("COLUMNS"), env.get("LINES")
    if columns and lines:
        return terminal, int(columns)
    if terminal and env["TERM"] in ("dumb", "unknown"):
        return terminal, 80
    return terminal, int(columns) if columns else (PTY_COLUMNS if pty_ else 80)


def compare(
    args: list[str], envs: tuple[str, ...], stdin: bytes = b"", codes: int = 0, hang: int = 0
) -> None:
    """Run *args* both ways in every env, on a pty and in pipes; the bytes must agree.

    *hang* is the length of the command's longest line with a hanging body
    (a row's note): on a terminal narrower than that rich wraps it, so lite
    hands the command to rich (and loads it); anywhere else lite writes it.
    """
    jobs = [(env, pty_, rich) for env in envs for pty_ in (True, False) for rich in (False, True)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda job: run(args, job[0], pty_=job[1], rich=job[2], stdin=stdin), jobs)
        )
    got = dict(zip(jobs, results, strict=True))
    for env in envs:
        for pty_ in (True, False):
            where = f"{' '.join(args)} [{env}, {'pty' if pty_ else 'pipe'}]"
            lite, rich = got[(env, pty_, False)], got[(env, pty_, True)]
            assert rich.rich, f"{where}: NETKIT_RENDER=rich did not load rich"
            terminal, width = _width(env, pty_)
            wraps = terminal and hang > width - 1
            wanted = env in HANDED_TO_RICH or wraps
            assert lite.rich == wanted, f"{where}: lite loaded rich: {lite.rich}"
            assert (lite.code, rich.code) == (codes, codes), (where, lite, rich)
            assert lite.out == rich.out, f"{where}: stdout\n{lite.out!r}\n{rich.out!r}"
            assert lite.err == rich.err, f"{where}: stderr\n{lite.err!r}\n{rich.err!r}"
            assert lite.out or lite.err, where  # it did write something


def test_env_table_covers_what_lite_hands_over() -> None:
    from netkit.render import lite

    for name, extra in ENVS.items():
        saved = dict(os.environ)
        try:
            for key in CLEARED:
                os.environ.pop(key, None)
            os.environ.update(extra)
            assert lite.lite_usable() == (name not in HANDED_TO_RICH), name
        finally:
            os.environ.clear()
            os.environ.update(saved)


# -- servers on port 0 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    servers: dict[str, Service] = {
        "udp-echo": UdpEchoServer(Recorder(), port=0, upper=False, quiet=True),
        "upper-server": UpperServer(Recorder(), port=0, quiet=True),
        "creosote": CreosoteListener(Recorder(), port=0, quiet=True),
    }
    with services_running(servers) as found:
        yield found


def _serve_forever(sock: socket.socket, stop: threading.Event, reply: bytes) -> None:
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.sendall(reply)


@pytest.fixture(scope="module")
def daytime() -> Iterator[dict[str, int]]:
    """A daytime server of the test's own per reply of DAYTIME: the reply, then close."""
    stop = threading.Event()
    socks, threads, ports = [], [], {}
    for name, reply in DAYTIME.items():
        sock = socket.create_server(("127.0.0.1", 0))
        sock.settimeout(0.2)
        thread = threading.Thread(target=_serve_forever, args=(sock, stop, reply), daemon=True)
        thread.start()
        socks.append(sock)
        threads.append(thread)
        ports[name] = sock.getsockname()[1]
    try:
        yield ports
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def dns() -> Iterator[str]:
    """A DNS server of the test's own answering with the hostile corpus."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        stop = threading.Event()
        thread = threading.Thread(target=serve_hostile_dns, args=(sock, stop), daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{sock.getsockname()[1]}"
        finally:
            stop.set()
            thread.join(5)


# -- every environment ------------------------------------------------------------


ALL = tuple(ENVS)

PACK_IP = ["10.0.0.1", "192.168.1.0/24", "10.0.0.1/31", "::ffff:192.168.1.1", "2001:db8::1/32"]


def test_pack_ip() -> None:
    compare(["pack-ip", *PACK_IP], ALL, hang=111)


def test_pack_ip_short_and_inet_aton() -> None:
    compare(["pack-ip", "--short", "8080"], EVERY, hang=88)
    compare(["pack-ip", "--inet-aton", "127.1"], ("default", "FORCE_COLOR", "ascii"), hang=95)


def test_pack_ip_bad_value_between_good_ones() -> None:
    """The Error: line (click's, on stderr) lands between the results as with rich; exit 2."""
    args = ["pack-ip", "10.0.0.1", "300.1.2.3", "::1"]
    compare(args, ("default", "FORCE_COLOR", "COLUMNS=200"), codes=2, hang=111)


def test_pack_ip_from_stdin() -> None:
    compare(["pack-ip", "-"], ("default", "COLUMNS=200"), stdin=b"10.0.0.1\n\n::1\n", hang=111)


def test_resolve() -> None:
    compare(["resolve", "localhost", "127.0.0.1"], EVERY, hang=56)


def test_udp_echo_send(ports: dict[str, int]) -> None:
    args = ["udp-echo", "send", "--port", str(ports["udp-echo"]), "hello", "wörld"]
    compare(args, (*EVERY, *sorted(HANDED_TO_RICH)))


def test_tcp_time_get(daytime: dict[str, int]) -> None:
    compare(["tcp-time", "get", "127.0.0.1", str(daytime["ctime"])], (*EVERY, "latin-1 COLUMNS=40"))


def test_upper_server_send(ports: dict[str, int]) -> None:
    compare(["upper-server", "send", "--port", str(ports["upper-server"]), "hi", "there"], EVERY)


def test_creosote_spew(ports: dict[str, int]) -> None:
    compare(["creosote", "spew", "--port", str(ports["creosote"]), "hello"], EVERY)


# -- hostile peer text ------------------------------------------------------------


def test_udp_echo_send_hostile_corpus(ports: dict[str, int]) -> None:
    """Every one-line payload of the corpus comes back as sent (a plain echo server)."""
    args = ["udp-echo", "send", "--port", str(ports["udp-echo"]), "-"]
    compare(args, HOSTILE_ENVS, stdin=b"\n".join(LINES) + b"\n")


def test_upper_server_send_hostile_corpus(ports: dict[str, int]) -> None:
    args = ["upper-server", "send", "--port", str(ports["upper-server"]), "-"]
    compare(args, HOSTILE_ENVS, stdin=b"\n".join(LINES) + b"\n")


@pytest.mark.parametrize("reply", list(DAYTIME))
def test_tcp_time_get_hostile_replies(reply: str, daytime: dict[str, int]) -> None:
    """Markup, tabs, wide and non-ASCII text as a daytime answer; control bytes and
    invalid UTF-8 are refused: the one Error: line and exit 1 are the same too."""
    code = 1 if "refused" in reply else 0
    compare(["tcp-time", "get", "127.0.0.1", str(daytime[reply])], HOSTILE_ENVS, codes=code)


@pytest.mark.parametrize("args", [["--type", "TXT", "hostile.example"], ["192.0.2.7"]])
def test_resolve_hostile_names(args: list[str], dns: str) -> None:
    """resolve --server: the corpus as TXT strings and as PTR names."""
    compare(["resolve", "--server", dns, "-t", "5", *args], HOSTILE_ENVS, hang=1000)

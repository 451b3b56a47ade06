"""creosote against programs nobody here wrote: nc -u -l as a listener, logger -n as a sender."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time

import pytest

from tests.helpers import Server, peer, run
from tests.peer_process import PeerProcess, free_udp_port

pytestmark = pytest.mark.interop


def read_exactly(stream: object, n: int, timeout: float) -> bytes:
    """*n* bytes from a pipe, waiting at most *timeout* seconds (bounded, no sleeping)."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    os.set_blocking(fd, False)
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"got {len(buf)} of {n} bytes: {buf[-200:]!r}")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
    return buf


def test_nc_listener_reads_spew_as_text() -> None:
    port = free_udp_port()
    message = "Mr. Creosote says: wafer-thin mint? " * 20 + "ça va"
    argv = [peer("nc"), "-v", "-u", "-l", "127.0.0.1", str(port)]
    with PeerProcess(argv, ready=b"Bound on") as nc:
        res = run("creosote", "spew", "--port", str(port), "--chunk-size", "256", message)
        assert res.returncode == 0, res.stderr
        chunks = int(re.search(rb"in (\d+) chunks", res.stderr).group(1))  # type: ignore[union-attr]
        wire = len(message.encode()) + 32 * chunks
        got = read_exactly(nc.proc.stdout, wire, 10)
    text = got.decode("utf-8")  # readable: every chunk is whole UTF-8
    headers = re.findall(r"\[creosote [0-9a-f]{8} (\d{5})/(\d{5})\] ", text)
    assert [int(i) for i, _ in headers] == list(range(1, chunks + 1))
    assert re.sub(r"\[creosote [0-9a-f]{8} \d{5}/\d{5}\] ", "", text) == message


def test_nc_listener_sees_short_message_unchanged() -> None:
    port = free_udp_port()
    with PeerProcess(
        [peer("nc"), "-v", "-u", "-l", "127.0.0.1", str(port)], ready=b"Bound on"
    ) as nc:
        assert run("creosote", "spew", "--port", str(port), "x = 42").returncode == 0
        assert read_exactly(nc.proc.stdout, 6, 10) == b"x = 42"


@pytest.mark.parametrize("fmt", ["--rfc3164", "--rfc5424"])
def test_logger_into_listen(fmt: str) -> None:
    with Server("creosote", "listen", "--port", "0", "--json") as srv:
        argv = [peer("logger"), "-n", "127.0.0.1", "-P", str(srv.port), "-d", fmt]
        argv += ["-p", "local3.warning", "-t", "myapp", "disk almost full"]
        res = subprocess.run(argv, capture_output=True, timeout=20)
        assert res.returncode == 0, res.stderr
        ev = srv.next_event()
        code, _out, _err = srv.stop()
    assert code == 0
    sl = ev["syslog"]
    assert sl["format"] == fmt[2:]
    assert (sl["facility"], sl["severity"], sl["app"]) == ("local3", "warning", "myapp")
    assert sl["host"]  # logger puts this machine's name
    assert sl["message"] == "disk almost full"
    assert ev["text"].startswith("<156>")  # local3 (19) * 8 + warning (4)

"""creosote listen on a real terminal (a pty): multi-line records, --level, --grep highlight."""

from __future__ import annotations

import json
import os
import pty
import re
import selectors
import socket
import subprocess
import time

from tests.helpers import NETKIT, env, read_line

SGR = re.compile(r"\x1b\[[0-9;]*m")


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while needle not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"{needle!r} not seen within {timeout} s: {buf!r}")
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return buf


def test_traceback_lines_level_filter_and_grep_highlight_on_a_pty() -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [NETKIT, "creosote", "listen", "--port", "0", "--level", "warning", "--grep", "fail\\w*"],
        stdout=slave,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env(COLUMNS="200", TERM="xterm-256color"),
    )
    os.close(slave)
    try:
        banner = read_line(proc.stderr, 10).decode()
        port = int(banner.split(":")[-1].split()[0])
        trace = "\n".join(
            ["Traceback (most recent call last):"]
            + [f'  File "app.py", line {i}, in step{i}' for i in range(18)]
            + ["KeyError: 'missing'"]
        )
        records = [
            {"level": "info", "logger": "app", "message": "hidden because info failed"},
            {"level": "error", "logger": "app", "message": "step 3 failed", "exc_text": trace},
            {"level": "warning", "logger": "app", "message": "the end: nothing failed"},
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for record in records:
                s.sendto(json.dumps(record).encode(), ("127.0.0.1", port))
        raw = read_until(master, b"the end").decode()
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
        os.close(master)
    plain = SGR.sub("", raw).replace("\r\n", "\n")
    lines = [line for line in plain.splitlines() if line]
    assert "hidden" not in plain  # --level warning hides info
    start = next(i for i, line in enumerate(lines) if "step 3 failed" in line)
    shown = lines[start : start + 21]
    assert shown[0].endswith("ERROR app: step 3 failed")
    assert shown[1] == "    Traceback (most recent call last):"
    assert shown[20] == "    KeyError: 'missing'"  # 21 lines: the message and its 20-line traceback
    assert lines[start + 21].endswith("WARNING app: the end: nothing failed")
    # the match is highlighted (reverse video), the error line stands out in red
    assert re.search(r"\x1b\[[0-9;]*7[0-9;]*mfailed\x1b\[0m", raw), raw
    assert re.search(r"\x1b\[1;31mERROR", raw), raw
    assert b"filtered 1" in err

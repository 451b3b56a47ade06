"""The installed ``netkit`` process, end to end: output streams, colour, pipes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from netkit import __version__
from tests.helpers import NETKIT, env, read_pty, run


def test_console_script_and_module_agree() -> None:
    a = run("--version")
    b = subprocess.run(
        [sys.executable, "-m", "netkit", "--version"], capture_output=True, timeout=20
    )
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout
    assert __version__.encode() in a.stdout


def test_results_on_stdout_errors_on_stderr() -> None:
    ok = run("pack-ip", "10.0.0.1", "--json")
    assert ok.returncode == 0 and ok.stderr == b""
    assert json.loads(ok.stdout)["integer"] == 0x0A000001
    bad = run("resolve", "no-such-host.invalid")
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr.decode().count("\n") == 1
    usage = run("pack-ip", "127.1")
    assert usage.returncode == 2 and usage.stdout == b""
    assert b"Usage: netkit pack-ip" in usage.stderr


@pytest.mark.parametrize(
    "cmd",
    [
        f"{NETKIT} resolve localhost --json | head -0",
        f"{NETKIT} pack-ip 192.168.1.1 | head -0",
        f"{NETKIT} completion bash | head -1",
        f"{NETKIT} --help | head -1",
    ],
)
def test_closed_pipe_gives_no_traceback(cmd: str) -> None:
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True, timeout=20, env=env()
    )
    assert b"Traceback" not in proc.stderr
    assert b"BrokenPipe" not in proc.stderr
    assert proc.stderr == b""


def run_on_tty(*args: str, extra_env: dict[str, str] | None = None) -> bytes:
    """Run netkit with stdout on a pseudo-terminal; return what it wrote."""
    e = env(TERM="xterm-256color", **(extra_env or {}))
    e.pop("NO_COLOR", None)
    if extra_env and "NO_COLOR" in extra_env:
        e["NO_COLOR"] = extra_env["NO_COLOR"]
    return read_pty([NETKIT, *args], e)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert b"\x1b[" in run_on_tty("pack-ip", "192.168.1.1")
    assert b"\x1b[" not in run("pack-ip", "192.168.1.1").stdout
    assert b"\x1b[" not in run_on_tty("pack-ip", "192.168.1.1", "--no-color")
    assert b"\x1b[" not in run_on_tty("pack-ip", "192.168.1.1", extra_env={"NO_COLOR": "1"})


def test_untrusted_input_never_reaches_the_terminal_raw() -> None:
    out = run_on_tty("pack-ip", "--inet-aton", "1.2.3.4 \x1b]52;c;aGk=\x07[/]", "--no-color")
    assert b"\x1b" not in out and b"\x07" not in out
    assert b"\\x1b]52" in out

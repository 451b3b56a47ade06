"""Issue 14 item 17: every one-shot command with stdin or stdout closed (``<&-``, ``>&-``)
or stdout on a full device: one ``Error:`` line and exit 1, never a traceback, never
exit 0 after losing output."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netkit.events import Recorder
from netkit.services.tcp_time import TimeServer
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.helpers import NETKIT, env

# {U}: udp-echo, {L}: upper-server, {T}: tcp-time, {C}: a UDP socket for creosote
ONE_SHOT = [
    ["pack-ip", "1.2.3.4"],
    ["pack-ip", "--json", "1.2.3.4"],
    ["resolve", "localhost"],
    ["resolve", "--json", "localhost"],
    ["completion", "bash"],
    ["udp-echo", "send", "-p", "{U}", "x"],
    ["udp-echo", "send", "--json", "-p", "{U}", "x"],
    ["upper-server", "send", "-p", "{L}", "x"],
    ["upper-server", "send", "--json", "-p", "{L}", "x"],
    ["tcp-time", "get", "-p", "{T}"],
    ["tcp-time", "get", "--json", "-p", "{T}"],
    ["creosote", "spew", "-p", "{C}", "x"],
    ["creosote", "spew", "--json", "-p", "{C}", "x"],
]
# commands that read standard input
READERS = [
    ["udp-echo", "send", "-p", "{U}", "-"],
    ["upper-server", "send", "-p", "{L}", "-"],
    ["upper-server", "chat", "-p", "{L}"],
    ["creosote", "spew", "-p", "{C}", "-"],
]


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, str]]:
    with (
        UdpEchoServer(Recorder(), port=0) as echo,
        UpperServer(Recorder(), port=0) as upper,
        TimeServer(Recorder(), port=0) as clock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        yield {
            "U": str(echo.address[1]),
            "L": str(upper.address[1]),
            "T": str(clock.address[1]),
            "C": str(sink.getsockname()[1]),
        }


def _sh(
    redirect: str, argv: list[str], ports: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    args = [a.format(**ports) for a in argv]
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", NETKIT, *args],
        capture_output=True,
        timeout=20,
        env=env(),
    )


def _one_error_line(res: subprocess.CompletedProcess[bytes], said: str) -> None:
    lines = res.stderr.decode(errors="replace").splitlines()
    assert res.returncode == 1, lines
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert said in lines[0], lines


@pytest.mark.parametrize("argv", ONE_SHOT + READERS, ids=" ".join)
def test_closed_stdout_is_one_line_exit_1(argv: list[str], ports: dict[str, str]) -> None:
    _one_error_line(_sh(">&- </dev/null", argv, ports), "standard output is closed")


@pytest.mark.parametrize("argv", ONE_SHOT, ids=" ".join)
def test_stdout_on_a_full_device_is_one_line_exit_1(argv: list[str], ports: dict[str, str]) -> None:
    res = _sh(">/dev/full </dev/null", argv, ports)
    if argv[:2] == ["creosote", "spew"] and "--json" not in argv:
        # its report goes to stderr: nothing for stdout, nothing lost
        assert res.returncode == 0, res.stderr
        return
    _one_error_line(res, "no space left on device")


@pytest.mark.parametrize("argv", ONE_SHOT, ids=" ".join)
def test_closed_stdin_does_not_matter_to_a_command_that_never_reads_it(
    argv: list[str], ports: dict[str, str]
) -> None:
    res = _sh("<&-", argv, ports)
    assert res.returncode == 0, res.stderr
    if argv[0] != "creosote":  # spew prints nothing on stdout without --json
        assert res.stdout.strip()
    assert b"Traceback" not in res.stderr


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_closed_stdin_for_a_command_that_reads_it(argv: list[str], ports: dict[str, str]) -> None:
    _one_error_line(_sh("<&-", argv, ports), "standard input is closed")
    # an empty stdin is not a closed one: nothing to send, exit 0
    res = _sh("</dev/null", argv, ports)
    assert res.returncode == 0, res.stderr
    assert b"Traceback" not in res.stderr


def test_chat_reads_lines_from_a_file(ports: dict[str, str], tmp_path: Path) -> None:
    # epoll refuses regular files (EPERM): chat < file must still work
    lines = tmp_path / "lines"
    lines.write_bytes(b"one\ntwo\n")
    res = _sh(f"<{lines}", ["upper-server", "chat", "-p", "{L}"], ports)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"ONE\nTWO\n"

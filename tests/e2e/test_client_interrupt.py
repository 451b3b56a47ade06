"""Ctrl-C in a one-shot client: one line on stderr and exit status 130 (128 + SIGINT).

Each client waits on a server of the test's that never answers: the test
sees the client's connection (TCP) or datagram (UDP) arrive, so it knows the
client is waiting, and sends SIGINT as a terminal would.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable

import pytest

from tests.helpers import NETKIT, env

TCP = {
    "tcp-time get": ["tcp-time", "get", "--timeout", "30"],
    "upper-server send": ["upper-server", "send", "--timeout", "30", "hi"],
    "upper-server chat": ["upper-server", "chat", "--timeout", "30"],
}
UDP = {
    "udp-echo send": ["udp-echo", "send", "--timeout", "30", "hi"],
    "udp-echo send --json": ["udp-echo", "send", "--timeout", "30", "--json", "hi"],
    "tcp-time get --udp": ["tcp-time", "get", "--udp", "--timeout", "30"],
}


def _interrupt(
    argv: list[str], port: int, arrived: Callable[[], object]
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen(
        [NETKIT, *argv, "-p", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        arrived()  # the client is waiting for its answer now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("name", list(TCP))
def test_tcp_client(name: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(20)
        conns: list[socket.socket] = []
        res = _interrupt(
            TCP[name], server.getsockname()[1], lambda: conns.append(server.accept()[0])
        )
        for c in conns:
            c.close()
    assert res.returncode == 130, res.stderr
    assert res.stderr.decode().splitlines() == ["Aborted: interrupted."]


@pytest.mark.parametrize("name", list(UDP))
def test_udp_client(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(20)
        res = _interrupt(UDP[name], server.getsockname()[1], lambda: server.recvfrom(2048))
    assert res.returncode == 130, res.stderr
    assert res.stderr.decode().splitlines() == ["Aborted: interrupted."]

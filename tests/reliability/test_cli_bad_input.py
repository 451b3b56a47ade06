"""Bad input to every command, through the real ``netkit`` process.
Issue 6, item 15: documented exit code (2 usage, 1 runtime), one clear error
line on stderr (click's Usage / Try / Error block for a usage error), never a
traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import NETKIT, env

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

# (argv, exit code, text the error line holds); {tcp}/{udp}: ports in use,
# {priv}: a free port below 1024, run as user nobody (root may bind it)
CASES: list[tuple[list[str], int, str]] = [
    # ports out of range, not a number, 0 for a client
    (["udp-echo", "send", "-p", "-1", "hi"], 2, "'-1' is not a port number"),
    (["udp-echo", "send", "-p", "65536", "hi"], 2, "port 65536 is out of range"),
    (["udp-echo", "send", "-p", "x", "hi"], 2, "'x' is not a port number"),
    (["udp-echo", "send", "-p", "0", "hi"], 2, "port 0 is out of range (1-65535)"),
    (["tcp-time", "get", "-p", "0"], 2, "port 0 is out of range (1-65535)"),
    (["upper-server", "send", "-p", "0", "hi"], 2, "port 0 is out of range (1-65535)"),
    (["creosote", "spew", "-p", "0", "hi"], 2, "port 0 is out of range (1-65535)"),
    (["upper-server", "send", "-H", "[::1]:0", "hi"], 2, "port 0 cannot be connected to"),
    (["tcp-time", "serve", "-p", "65536"], 2, "port 65536 is out of range (0-65535)"),
    (["upper-server", "serve", "-p", "-1"], 2, "'-1' is not a port number"),
    (["creosote", "listen", "-p", "x"], 2, "'x' is not a port number"),
    (["udp-echo", "serve", "-p", "99999"], 2, "port 99999 is out of range"),
    # a privileged port as an unprivileged user: EACCES
    (["upper-server", "serve", "-p", "{priv}"], 1, "permission denied"),
    (["tcp-time", "serve", "-p", "{priv}"], 1, "permission denied"),
    (["udp-echo", "serve", "-p", "{priv}"], 1, "permission denied"),
    (["creosote", "listen", "-p", "{priv}"], 1, "permission denied"),
    # port already in use
    (["upper-server", "serve", "-p", "{tcp}"], 1, "address already in use"),
    (["tcp-time", "serve", "-p", "{tcp}"], 1, "address already in use"),
    (["upper-server", "serve", "--mode", "async", "-p", "{tcp}"], 1, "address already in use"),
    (["udp-echo", "serve", "-p", "{udp}"], 1, "address already in use"),
    (["creosote", "listen", "-p", "{udp}"], 1, "address already in use"),
    # names that do not resolve, a scope that does not exist
    (["tcp-time", "get", "-H", "no-such-host.invalid"], 1, "cannot resolve 'no-such-host.invalid'"),
    (["udp-echo", "send", "-H", "no-such-host.invalid", "hi"], 1, "cannot resolve"),
    (["resolve", "no-such-host.invalid"], 1, "cannot resolve 'no-such-host.invalid'"),
    (["upper-server", "send", "-H", "fe80::1%nosuchif", "hi"], 1, "no network interface named"),
    # [::1]:7 forms
    (["upper-server", "send", "-H", "[::1]:7", "hi"], 1, "connection refused"),
    (["tcp-time", "get", "-H", "[::1]:7"], 1, "connection refused"),
    (["tcp-time", "get", "-H", "[::1"], 2, "missing ']'"),
    (["tcp-time", "get", "-H", "[::1]7"], 2, "expected ':PORT' after ']'"),
    (["upper-server", "send", "-H", "[::1]:7", "-p", "8", "hi"], 2, "disagree"),
    # pack-ip is strict by default
    (["pack-ip", "1.2.3.4 junk"], 2, "contains white space"),
    (["pack-ip", "127.1"], 2, "has 2 parts; a dotted quad has 4"),
    (["pack-ip", "010.0.0.1"], 2, "leading zero"),
    # unknown options, missing arguments, bad choices
    (["demo", "--bogus"], 2, "No such option '--bogus'"),
    (["resolve", "localhost", "--bogus"], 2, "No such option '--bogus'"),
    (["upper-server", "serve", "--mode", "x"], 2, "'x' is not one of"),
    (["upper-server", "send"], 2, "Missing argument 'LINE...'"),
    (["pack-ip"], 2, "Missing argument 'VALUE'"),
    (["creosote", "spew"], 2, "Missing argument"),
    (["resolve"], 2, "Missing argument 'QUERY...'"),
    (["demo", "nope"], 2, "'nope' is not one of"),
    (["udp-echo", "send", "-t", "0", "hi"], 2, "--timeout"),
]


def _free_privileged_port() -> int:
    """A port below 1024 that nothing uses, for TCP and UDP (we are root)."""
    for port in range(1023, 900, -1):
        try:
            with socket.socket() as t, socket.socket(type=socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise AssertionError("no free port below 1024")


@pytest.fixture(scope="module")
def busy() -> Iterator[dict[str, str]]:
    assert os.geteuid() == 0, "the EACCES cases run a server as nobody: run as root"
    with socket.socket() as t, socket.socket(type=socket.SOCK_DGRAM) as u:
        t.bind(("127.0.0.1", 0))
        t.listen()
        u.bind(("127.0.0.1", 0))
        yield {
            "tcp": str(t.getsockname()[1]),
            "udp": str(u.getsockname()[1]),
            "priv": str(_free_privileged_port()),
        }


def test_table_has_at_least_25_cases_over_every_command() -> None:
    commands = {argv[0] for argv, _c, _t in CASES}
    assert len(CASES) >= 25
    assert commands >= {"udp-echo", "creosote", "tcp-time", "upper-server", "resolve"}
    assert commands >= {"pack-ip", "demo"}


@pytest.mark.parametrize(("argv", "code", "text"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_exit_code_and_one_error_line(
    argv: list[str], code: int, text: str, busy: dict[str, str]
) -> None:
    """Item 15: each bad input exits 2 (usage) or 1 (runtime) with one error line."""
    args = [a.format(**busy) for a in argv]
    prefix = NOBODY if "{priv}" in argv else []
    proc = subprocess.run(
        [*prefix, NETKIT, *args],
        capture_output=True,
        timeout=20,
        env=env(),
        stdin=subprocess.DEVNULL,
    )
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode == code, (proc.returncode, err)
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, err
    assert text in errors[0], err
    if code == 2:
        lines = err.splitlines()
        assert lines[0].startswith("Usage: netkit "), err
        assert any(line.startswith("Try 'netkit ") for line in lines), err
    else:
        assert err.strip() == errors[0], err  # the one line, nothing else
    assert proc.stdout == b""

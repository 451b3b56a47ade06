"""udp-echo against programs nobody here wrote: ncat and socat, as clients and as servers."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import Server, peer, read_line, run
from tests.peer_process import PeerProcess, free_udp_port

pytestmark = pytest.mark.interop


def test_ncat_client() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json") as srv:
        with PeerProcess(
            [peer("ncat"), "-u", "127.0.0.1", str(srv.port)], stdin=subprocess.PIPE
        ) as nc:
            assert nc.proc.stdin is not None
            for word in (b"hello ncat", b"second line"):
                nc.proc.stdin.write(word + b"\n")
                nc.proc.stdin.flush()
                assert read_line(nc.proc.stdout, 5) == word.upper() + b"\n"
            nc.proc.stdin.close()
        assert srv.next_event()["text"] == "hello ncat\n"
        code, _out, _err = srv.stop()
    assert code == 0


def test_socat_client() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--plain", "--json") as srv:
        res = subprocess.run(
            [peer("socat"), "-t2", "-", f"UDP:127.0.0.1:{srv.port}"],
            input=b"Hi Socat\n",
            capture_output=True,
            timeout=20,
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout == b"Hi Socat\n"  # --plain: RFC 862, unchanged
        assert srv.next_event()["size"] == 9
        code, _out, _err = srv.stop()
    assert code == 0


def test_send_to_socat_echo_server() -> None:
    port = free_udp_port()
    argv = [peer("socat"), "-d", "-d", "-T1", f"UDP-RECVFROM:{port},bind=127.0.0.1,fork", "PIPE"]
    with PeerProcess(argv, ready=b"receiving on"):
        res = run("udp-echo", "send", "--port", str(port), "--timeout", "5", "one", "two")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"one\ntwo\n"


def test_send_to_ncat_echo_server() -> None:
    port = free_udp_port()
    argv = [peer("ncat"), "-v", "-u", "-l", "-k", "127.0.0.1", str(port), "--exec", "/bin/cat"]
    with PeerProcess(argv, ready=b"Listening on"):
        res = run("udp-echo", "send", "--port", str(port), "--timeout", "5", "-", input=b"x\ny\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"x\ny\n"

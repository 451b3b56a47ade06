"""SNTP interop with programs nobody here wrote: chrony (client and server) and ntpsec's ntpdig.

chronyd never touches the clock here: as a client ``-Q`` only reports the
error, as a server ``-x``.  ntpdig only talks to port 123, so it and
netkit's server run in a network namespace of the test's own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from netkit.clients.sntp import get_sntp
from netkit.net import NetError
from tests.helpers import SNTP_SERVE, Server, peer
from tests.peer_process import PeerProcess, free_udp_port

ROOT = Path(__file__).resolve().parent.parent.parent


def chronyd_q(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [peer("chronyd"), "-Q", "-t", "10", f"server 127.0.0.1 port {port} iburst maxsamples 1"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_chronyd_accepts_netkits_server_with_a_claimed_stratum() -> None:
    with Server(
        *SNTP_SERVE,
        "--stratum",
        "2",
        "--refid",
        "LOCL",
    ) as srv:
        done = chronyd_q(srv.port)
        served = srv.next_event()
        srv.stop()
    assert done.returncode == 0, done.stderr
    m = re.search(r"System clock wrong by (-?[0-9.]+) seconds \(ignored\)", done.stderr)
    assert m, done.stderr
    print(f"chronyd -Q: clock error {float(m.group(1)):+.6f} s")
    assert abs(float(m.group(1))) < 0.010
    assert served["event"] == "served" and served["kind"] == "reply" and served["stratum"] == 2


def test_chronyd_refuses_netkits_default_unsynchronised_server() -> None:
    with Server(*SNTP_SERVE) as srv:
        done = subprocess.run(
            [
                peer("chronyd"),
                "-Q",
                "-t",
                "3",
                f"server 127.0.0.1 port {srv.port} iburst maxsamples 1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        served = srv.next_event()
        srv.stop()
    assert served["stratum"] == 16 and served["leap"] == 3  # it was asked and answered
    assert done.returncode != 0 and "System clock wrong" not in done.stderr
    assert "Timeout reached" in done.stderr


def test_netkits_client_against_chronyd_as_a_server(tmp_path: Path) -> None:
    port = free_udp_port()
    conf = tmp_path / "chrony.conf"
    conf.write_text(
        f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n"
        f"pidfile {tmp_path}/pid\ndriftfile {tmp_path}/drift\n"
    )
    argv = [peer("chronyd"), "-d", "-x", "-u", "root", "-f", str(conf)]
    with PeerProcess(argv, ready=b"Running with root privileges"):
        got = None
        for _ in range(10):  # bounded: the first request may beat chronyd's bind
            try:
                got = get_sntp("127.0.0.1", port, timeout=1, samples=2, pause=0.1)
                break
            except NetError:
                continue
    assert got is not None
    print(f"netkit vs chronyd: offset {got.offset_seconds:+.6f} s, delay {got.delay_seconds:.6f} s")
    assert got.stratum == 8 and got.leap == 0 and got.version == 4
    assert abs(got.offset_seconds) < 0.010


def in_namespace(server_args: list[str], client: list[str]) -> dict[str, object]:
    done = subprocess.run(
        [
            peer("unshare"),
            "-n",
            sys.executable,
            "-m",
            "tests.netns_sntp",
            *server_args,
            "--",
            *client,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_ntpdig_accepts_netkits_server_in_a_namespace() -> None:
    got = in_namespace(["--stratum", "2", "--refid", "LOCL"], [peer("ntpdig"), "-j", "127.0.0.1"])
    assert got["peer_rc"] == 0, got
    data = json.loads(str(got["peer_out"]))
    print(f"ntpdig: offset {data['offset']:+.6f} s, stratum {data['stratum']}, {data['leap']}")
    assert data["stratum"] == 2 and data["leap"] == "no-leap" and abs(data["offset"]) < 0.010
    events = got["events"]
    assert isinstance(events, list)
    assert any(e["event"] == "served" and e["kind"] == "reply" for e in events)


def test_ntpdig_refuses_netkits_default_server() -> None:
    got = in_namespace([], [peer("ntpdig"), "-j", "127.0.0.1"])
    assert got["peer_rc"] != 0
    assert "stratum too high" in str(got["peer_err"])

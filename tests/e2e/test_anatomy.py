"""netkit anatomy end to end: every field checked against tshark, loopback's artefacts
explained, privileges, namespaces always removed, terminal safety.

Root only (AF_PACKET capture, network namespaces); the unprivileged cases run
the real command as nobody through setpriv.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from netkit.services import anatomy
from tests.anatomy_oracle import compare
from tests.helpers import NETKIT, env, peer, run

EXCHANGES = ["udp", "tcp", "http", "dns", "all"]


def events_of(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


def anatomy_json(tmp_path: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    pcap = str(tmp_path / "out.pcapng")
    done = run("anatomy", *args, "--json", "--pcap", pcap, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return events_of(done.stdout), pcap


def _ours_or_orphaned(tag: str) -> bool:
    """A namespace or veth tagged with this process's pid, or with a pid that has exited.

    Another netkit still running (a parallel test run) owns its namespaces; one
    whose process is gone left them behind.
    """
    if not tag.isdigit():
        return True
    return int(tag) == os.getpid() or not Path(f"/proc/{tag}").exists()


def no_leftovers() -> None:
    names = anatomy.leftover_namespaces()
    assert [n for n in names if _ours_or_orphaned(n.split("-")[1])] == [], names
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    veths = [x.split(":")[1].strip().split("@")[0] for x in links.stdout.splitlines() if " nk" in x]
    assert [v for v in veths if _ours_or_orphaned(v[2:-1])] == [], veths


@pytest.mark.interop
@pytest.mark.parametrize("exchange", EXCHANGES)
def test_every_field_equals_tshark_on_loopback(tmp_path: Path, exchange: str) -> None:
    peer("tshark")
    events, pcap = anatomy_json(tmp_path, exchange)
    compared, problems = compare(events, pcap)
    frames = [e for e in events if e["event"] == "frame"]
    print(f"{exchange}: {len(frames)} frames, {compared} fields compared with tshark")
    assert problems == []
    assert compared > 20 * len(frames)
    kinds = {layer["layer"] for f in frames for layer in f["layers"]}
    expected = {
        "udp": {"eth", "ip", "udp"},
        "tcp": {"eth", "ip", "tcp"},
        "http": {"eth", "ip", "tcp", "http"},
        "dns": {"eth", "ip", "udp", "dns", "tcp"},
        "all": {"eth", "ip", "udp", "dns", "tcp", "http"},
    }[exchange]
    assert kinds == expected


@pytest.mark.interop
@pytest.mark.parametrize("exchange", ["udp", "tcp", "http"])
def test_every_field_equals_tshark_over_ipv6(tmp_path: Path, exchange: str) -> None:
    peer("tshark")
    events, pcap = anatomy_json(tmp_path, "-6", exchange)
    compared, problems = compare(events, pcap)
    assert problems == []
    frames = [e for e in events if e["event"] == "frame"]
    assert all(f["layers"][1]["layer"] == "ipv6" for f in frames)
    assert frames[0]["layers"][1]["fields"]["ipv6.src"] == "::1"
    print(f"-6 {exchange}: {len(frames)} frames, {compared} fields compared with tshark")


@pytest.mark.interop
@pytest.mark.parametrize("exchange", ["udp", "all"])
def test_every_field_equals_tshark_between_namespaces_with_arp(
    tmp_path: Path, exchange: str
) -> None:
    peer("tshark")
    events, pcap = anatomy_json(tmp_path, "--netns", exchange)
    compared, problems = compare(events, pcap)
    assert problems == []
    frames = [e for e in events if e["event"] == "frame"]
    arp = [layer["fields"] for f in frames for layer in f["layers"] if layer["layer"] == "arp"]
    assert [a["arp.opcode"] for a in arp] == [1, 2]  # who-has, is-at
    assert (
        arp[0]["arp.dst.proto_ipv4"] == "192.0.2.2"
        and arp[0]["arp.dst.hw_mac"] == "00:00:00:00:00:00"
    )
    neighbours = [e for e in events if e["event"] == "neighbours"]
    before = next(e for e in neighbours if e["when"] == "before" and e["side"] == "client")
    after = next(e for e in neighbours if e["when"] == "after" and e["side"] == "client")
    server = next(e for e in neighbours if e["side"] == "server")
    assert before["entries"] == []
    assert after["entries"][0]["address"] == "192.0.2.2"
    assert after["entries"][0]["mac"] == server["mac"] == arp[1]["arp.src.hw_mac"]
    eth = frames[-1]["layers"][0]["fields"]
    assert "00:00:00:00:00:00" not in (eth["eth.src"], eth["eth.dst"])
    print(f"--netns {exchange}: {len(frames)} frames, {compared} fields compared with tshark")
    no_leftovers()


@pytest.mark.parametrize("exchange", ["udp", "http"])
def test_no_frame_shown_twice_and_checksums_explained(tmp_path: Path, exchange: str) -> None:
    events, _ = anatomy_json(tmp_path, exchange)
    frames = [e for e in events if e["event"] == "frame"]
    summary = events[-1]
    assert summary["event"] == "summary"
    # loopback passes every frame twice; one copy is dropped and counted
    assert summary["duplicates_dropped"] == len(frames) == summary["frames"]
    assert len({f["hex"] for f in frames}) == len(frames)
    assert [f["index"] for f in frames] == list(range(1, len(frames) + 1))
    for f in frames:
        for layer in f["layers"]:
            verdict = layer.get("checksum")
            if verdict is None:
                continue
            assert verdict["status"] in ("correct", "partial"), verdict
            if verdict["status"] == "partial":
                assert "checksum offload" in verdict["note"]
    human = run("anatomy", exchange, "--no-color", timeout=60)
    assert human.returncode == 0, human.stderr
    text = human.stdout.decode()
    assert "wrong" not in text
    assert text.count("computed by the NIC (checksum offload): not filled in on loopback") >= 2
    assert "loopback has no hardware" in text
    assert "duplicates dropped" in human.stderr.decode()


def test_human_output_has_the_diagrams_the_sequence_and_the_steps() -> None:
    done = run("anatomy", "all", "--no-color", timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    for needle in (
        "IPv4 (RFC 791)",
        "TCP (RFC 9293)",
        "DNS (RFC 1035)",
        "HTTP/1.1 (RFC 9112)",
        "|       Source port",
        "The exchange, frame by frame",
        "client SYN_SENT, server SYN_RCVD",
        "TIME_WAIT",
        "name → address (DNS)",
        "GET / HTTP/1.1",
        "in a TCP segment (+32) in an IPv4 packet (+20) in an Ethernet frame (+14)",
    ):
        assert needle in out, needle


def as_nobody(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [peer("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", NETKIT, *args],
        capture_output=True,
        timeout=60,
        env=env(),
    )


def test_without_cap_net_raw_one_line_and_exit_1() -> None:
    for args in (["anatomy", "udp"], ["anatomy", "--json"], ["anatomy", "--netns", "tcp"]):
        done = as_nobody(*args)
        err = done.stderr.decode()
        assert done.returncode == 1, err
        assert err.count("\n") == 1 and err.startswith("Error: ") and "Traceback" not in err
        assert ("CAP_NET_RAW" in err) or ("--netns needs root" in err)
        assert done.stdout == b""
    no_leftovers()


def test_no_capture_works_without_privilege() -> None:
    done = as_nobody("anatomy", "tcp", "--no-capture", "--json")
    assert done.returncode == 0, done.stderr
    events = events_of(done.stdout)
    sockets = [e for e in events if e["event"] == "socket"]
    assert sockets and sockets[0]["tcp_info"]["state"] == "ESTABLISHED"
    assert sockets[0]["tcp_info"]["snd_mss"] > 0 and sockets[0]["local"].startswith("127.0.0.1:")
    assert "needs CAP_NET_RAW" in sockets[0]["missing"]
    human = as_nobody("anatomy", "udp", "--no-capture", "--no-color")
    assert human.returncode == 0 and b"getsockname() 127.0.0.1:" in human.stdout


def test_netns_cleaned_up_after_sigint_in_the_middle() -> None:
    proc = subprocess.Popen(
        [NETKIT, "anatomy", "--netns", "all", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    name = f"netkit-{proc.pid}-server"
    deadline = time.monotonic() + 20
    seen = False
    while time.monotonic() < deadline and proc.poll() is None:  # bounded: 20 s
        if name in anatomy.leftover_namespaces():
            seen = True
            break
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    print(f"SIGINT after the namespaces appeared: exit {proc.returncode}, {err.decode().strip()!r}")
    assert seen, "the namespaces never appeared"
    # interrupted (130, one line), or it had finished just before the signal (0)
    assert proc.returncode in (0, 130), err
    if proc.returncode == 130:
        assert err.decode().splitlines() == [
            "Aborted: interrupted; everything it started is stopped."
        ]
    no_leftovers()


def test_netns_cleaned_up_when_interrupted_while_frames_are_shown() -> None:
    def sink(event: object) -> None:
        if type(event).__name__ == "AnatomyFrame":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        anatomy.run_anatomy(sink, "udp", netns=True)
    no_leftovers()


def test_netns_cleaned_up_when_the_server_fails_to_start(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: anatomy.OneShotServer) -> anatomy.OneShotServer:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(anatomy.OneShotServer, "start", refuse)
    result = runner.invoke(cli, ["anatomy", "--netns", "http"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().startswith("Error: ") and "in use" in result.output
    no_leftovers()


def test_netns_normal_exit_leaves_nothing() -> None:
    done = run("anatomy", "--netns", "tcp", "--no-color", timeout=60)
    assert done.returncode == 0, done.stderr
    assert (
        b"neighbour cache of the client" in done.stdout and b"ARP who has 192.0.2.2?" in done.stdout
    )
    no_leftovers()


def test_http_and_dns_text_is_escaped_for_the_terminal() -> None:
    """A hostile HTTP header and DNS name go through text.escape like every other renderer's."""
    from netkit.protocols import frames
    from netkit.render.human import HumanRenderer
    from netkit.services.anatomy import Captured, Outcome, report

    evil = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\u202e"
    http = f"GET /{evil} HTTP/1.1\r\nHost: {evil}\r\nX-{evil}: 1\r\n\r\n".encode()
    name = b"\x06e\x1b[2Jx\x04test\x00"
    dns_msg = bytes.fromhex("1a2b01000001000000000000") + name + b"\x00\x01\x00\x01"

    def frame(proto: int, sport: int, dport: int, payload: bytes) -> bytes:
        if proto == 6:
            l4 = frames.build_tcp(sport, dport, 1, 1, 0x18, 512) + payload
        else:
            l4 = frames.build_udp(sport, dport, len(payload)) + payload
        ip = frames.build_ipv4("127.0.0.1", "127.0.0.1", proto, len(l4))
        return frames.build_ethernet("00:00:00:00:00:00", "00:00:00:00:00:00", 0x0800) + ip + l4

    outcome = Outcome(
        "all",
        [
            Captured(1_000_000, frame(17, 40000, 5353, dns_msg), False),
            Captured(1_000_100, frame(6, 40001, 8080, http), False),
        ],
        0,
        {"dns": 5353, "http": 8080},
        [],
        {},
    )
    texts = []
    for fields in (False, True):
        r = HumanRenderer(no_color=True)
        r.show_fields = fields  # type: ignore[attr-defined]
        buf = io.StringIO()
        r.out.file = buf
        report(outcome, r, client_ip="127.0.0.1", loopback=True)
        texts.append(buf.getvalue())
    text = "".join(texts)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]52;c;SGVsbG8=" in text and "\\u202e" in text
    assert "e\\x1b[2Jx.test" in text  # the DNS name, escaped
    assert os.environ.get("NO_COLOR") is None


def test_demo_addresses_and_layers_step() -> None:
    done = run("demo", "addresses", "--no-color", timeout=60)
    assert done.returncode == 0, done.stderr
    assert b"netkit anatomy udp: 14 bytes of data in a UDP datagram (+8)" in done.stdout
    assert b"each layer adds its header" in done.stdout
    unprivileged = as_nobody("demo", "addresses", "--no-color")
    assert unprivileged.returncode == 0, unprivileged.stderr
    assert b"needs CAP_NET_RAW: run `sudo netkit anatomy`" in unprivileged.stdout


def test_bad_input_one_error_line() -> None:
    for args, code in (
        (["anatomy", "udp", "--pcap", "/nonexistent/dir/x.pcapng"], 1),
        (["anatomy", "--no-capture", "--netns"], 2),
        (["anatomy", "bogus"], 2),
    ):
        done = run(*args, timeout=60)
        err = done.stderr.decode()
        assert done.returncode == code, err
        assert [x for x in err.splitlines() if x.startswith("Error:")] and "Traceback" not in err
        assert done.stdout == b""
    no_leftovers()

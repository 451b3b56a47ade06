"""tcp-time: the service on port 0, the real command, and rdate / inetd / xinetd."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from netkit.clients.tcp_time import get_time
from netkit.events import Listening, Summary
from netkit.events.tcp_time import TimeSent
from netkit.net import NetError
from netkit.protocols import timeproto
from netkit.services.tcp_time import TimeServer
from tests.helpers import Server, peer, run
from tests.sink import Collector
from tests.stream_util import (
    connect,
    free_port,
    inetd_dir,
    recv_all,
    stop_proc,
    wait_listening,
)

FIXED = 1_800_000_000.25  # a clock the tests control


@pytest.mark.parametrize("protocol", ["daytime", "time"])
def test_tcp_service_answers_and_closes(protocol: str) -> None:
    events = Collector()
    with TimeServer(events, port=0, protocol=protocol, clock=lambda: FIXED) as server:
        assert isinstance(events.events[0], Listening)
        with connect(server.address) as sock:
            data = recv_all(sock)
        sent = events.wait_for(TimeSent, 1)[0]
    if protocol == "time":
        assert data == timeproto.pack_rfc868(FIXED)
        assert sent.value == str(timeproto.to_rfc868(FIXED))
    else:
        assert data == time.ctime(FIXED).encode() + b"\r\n"
        assert sent.value == time.ctime(FIXED)
    assert sent.unix == int(FIXED) and sent.transport == "tcp"
    assert sent.peer.startswith("127.0.0.1:")


@pytest.mark.parametrize("protocol", ["daytime", "time"])
def test_udp_service_answers_every_datagram_even_empty(protocol: str) -> None:
    events = Collector()
    with TimeServer(events, port=0, protocol=protocol, udp=True, clock=lambda: FIXED) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for payload in (b"", b"anything"):
                sock.sendto(payload, server.address)
                data, _ = sock.recvfrom(100)
                assert data == (
                    timeproto.pack_rfc868(FIXED) if protocol == "time" else timeproto.daytime(FIXED)
                )
        events.wait_for(TimeSent, 2)


def test_count_stops_the_service() -> None:
    events = Collector()
    with TimeServer(events, port=0, count=3) as server:
        for _ in range(3):
            with connect(server.address) as sock:
                recv_all(sock)
        assert server.wait(5)
    assert server.summary().counts["handled"] == 3


@pytest.mark.parametrize("protocol", ["daytime", "time"])
@pytest.mark.parametrize("udp", [False, True])
def test_client_against_service(protocol: str, udp: bool) -> None:
    now = time.time()
    with TimeServer(
        Collector(), port=0, protocol=protocol, udp=udp, clock=lambda: now + 100
    ) as srv:
        got = get_time(*srv.address, protocol=protocol, udp=udp, timeout=5)
    assert got.unix is not None and abs(got.unix - (now + 100)) <= 1
    assert got.offset_seconds is not None and 98 <= got.offset_seconds <= 101
    assert got.transport == ("udp" if udp else "tcp")


def test_client_after_the_2036_wrap() -> None:
    later = timeproto.WRAP_UNIX + 1000.0
    with TimeServer(Collector(), port=0, protocol="time", clock=lambda: later) as srv:
        got = get_time(*srv.address, protocol="time", timeout=5, clock=lambda: later)
    assert got.rfc868 == 1000
    assert got.unix == int(later)
    assert got.text == "2036-02-07 06:44:56 UTC"


def _one_shot_server(reply: bytes, close: bool = True) -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize(
    ("reply", "protocol", "message"),
    [
        (b"\x01\x02", "time", "short reply"),
        (b"\x01\x02\x03\x04\x05\x06", "time", "oversized reply"),
        (b"x" * 300, "daytime", "oversized reply"),
        (b"", "daytime", "empty reply"),
    ],
)
def test_client_rejects_bad_replies(reply: bytes, protocol: str, message: str) -> None:
    listener, port = _one_shot_server(reply)
    with listener:
        result: list[Exception] = []

        import threading

        def ask() -> None:
            try:
                get_time("127.0.0.1", port, protocol=protocol, timeout=5)
            except NetError as exc:
                result.append(exc)

        t = threading.Thread(target=ask)
        t.start()
        conn, _ = listener.accept()
        with conn:
            conn.sendall(reply)
        t.join(10)
    assert result and message in str(result[0])


def test_cli_serve_json_and_get(tmp_path: Path) -> None:
    with Server("tcp-time", "serve", "--port", "0", "--json", "--protocol", "time") as srv:
        assert srv.listening == {
            "event": "listening",
            "host": "127.0.0.1",
            "port": srv.port,
            "transport": "tcp",
        }
        got = run("tcp-time", "get", "-p", str(srv.port), "--protocol", "time", "--json")
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)
        assert data["event"] == "time" and data["protocol"] == "time"
        assert abs(data["unix"] - time.time()) < 5 and abs(data["offset_seconds"]) < 5
        sent = srv.next_event()
        assert sent["event"] == "sent" and sent["protocol"] == "time"
        human = run("tcp-time", "get", "-p", str(srv.port), "--protocol", "time")
        assert human.returncode == 0 and b"UTC" in human.stdout
        assert b"offset" in human.stderr
        code, out, _err = srv.stop()
    assert code == 0
    assert json.loads(out.splitlines()[-1])["event"] == "summary"


def test_cli_daytime_human_output_says_local_time() -> None:
    with Server("tcp-time", "serve", "--port", "0", "--json") as srv:
        got = run("tcp-time", "get", "--host", f"127.0.0.1:{srv.port}")
        assert got.returncode == 0
        assert got.stdout.decode().strip()[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        assert b"local time" in got.stderr
        assert srv.stop()[0] == 0


def test_cli_count_and_udp() -> None:
    with Server("tcp-time", "serve", "--port", "0", "--json", "--udp", "--count", "1") as srv:
        assert srv.listening["transport"] == "udp"
        got = run("tcp-time", "get", "-p", str(srv.port), "--udp", "--json")
        assert got.returncode == 0
        assert srv.proc.wait(10) == 0
        assert srv.stop()[0] == 0


def test_cli_errors_are_one_line() -> None:
    port = free_port()
    refused = run("tcp-time", "get", "-p", str(port))
    assert refused.returncode == 1
    assert refused.stderr.decode().count("\n") == 1 and b"refused" in refused.stderr
    timeout = run("tcp-time", "get", "-p", str(port), "--udp", "--timeout", "0.3")
    assert timeout.returncode == 1 and b"Traceback" not in timeout.stderr
    bad = run("tcp-time", "get", "-p", "99999")
    assert bad.returncode == 2
    proto = run("tcp-time", "serve", "--protocol", "nope")
    assert proto.returncode == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        inuse = run("tcp-time", "serve", "-p", str(busy.getsockname()[1]))
    assert inuse.returncode == 1 and b"already in use" in inuse.stderr


def test_sigint_stops_with_summary() -> None:
    import signal

    with Server("tcp-time", "serve", "--port", "0", "--json") as srv:
        code, out, _err = srv.stop(signal.SIGINT)
    assert code == 0
    assert json.loads(out.splitlines()[-1])["reason"] == "stopped by SIGINT"


# -- interop ---------------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("udp", [False, True])
def test_rdate_reads_our_time(udp: bool) -> None:
    rdate = peer("rdate")
    args = ["tcp-time", "serve", "--port", "0", "--json", "--protocol", "time"]
    with Server(*args, *(["--udp"] if udp else [])) as srv:
        cmd = [rdate, "-p", "-o", str(srv.port), *(["-u"] if udp else []), "127.0.0.1"]
        proc = subprocess.run(cmd, capture_output=True, timeout=20)
        assert proc.returncode == 0, proc.stderr
        # rdate prints e.g. "rdate: [127.0.0.1]	Wed Nov 25 18:52:34 2026"
        assert time.strftime("%Y").encode() in proc.stdout
        sent = srv.next_event()
        assert sent["event"] == "sent" and sent["transport"] == ("udp" if udp else "tcp")
        assert srv.stop()[0] == 0


def _services_file(tmp: Path, ports: dict[str, int]) -> Path:
    lines = []
    for raw in Path("/etc/services").read_text().splitlines():
        name = raw.split()[0] if raw.split() else ""
        if name in ports:
            continue
        lines.append(raw)
    for name, port in ports.items():
        lines.append(f"{name}\t{port}/tcp")
    path = tmp / "services"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.interop
def test_get_from_openbsd_inetd(tmp_path: Path) -> None:
    base = inetd_dir()
    peer("unshare")
    ports = {"daytime": free_port(), "time": free_port()}
    services = _services_file(tmp_path, ports)
    conf = tmp_path / "inetd.conf"
    conf.write_text(
        "127.0.0.1:daytime stream tcp nowait root internal\n"
        "127.0.0.1:time stream tcp nowait root internal\n"
    )
    inetd = base / "usr/sbin/inetd"
    script = f"mount --bind {services} /etc/services && exec {inetd} -i -R 1000000000 {conf}"
    proc = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_listening(proc, ports["daytime"])
        wait_listening(proc, ports["time"])
        _check_get(ports)
    finally:
        stop_proc(proc)


@pytest.mark.interop
def test_get_from_xinetd(tmp_path: Path) -> None:
    base = inetd_dir()
    ports = {"daytime": free_port(), "time": free_port()}
    blocks = ["defaults\n{\n    instances = UNLIMITED\n    cps = 1000000 1\n}\n"]
    for name, port in ports.items():
        blocks.append(
            f"service {name}\n{{\n    type = INTERNAL UNLISTED\n    id = {name}-stream\n"
            f"    socket_type = stream\n    protocol = tcp\n    port = {port}\n"
            "    bind = 127.0.0.1\n    flags = IPv4\n    wait = no\n    user = root\n}\n"
        )
    conf = tmp_path / "xinetd.conf"
    conf.write_text("\n".join(blocks))
    proc = subprocess.Popen(
        [
            f"{base}/usr/sbin/xinetd",
            "-f",
            str(conf),
            "-dontfork",
            "-pidfile",
            str(tmp_path / "pid"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(proc, ports["daytime"])
        wait_listening(proc, ports["time"])
        _check_get(ports)
    finally:
        stop_proc(proc)


def _check_get(ports: dict[str, int]) -> None:
    for protocol in ("daytime", "time"):
        got = run("tcp-time", "get", "-p", str(ports[protocol]), "--protocol", protocol, "--json")
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)
        assert data["protocol"] == protocol and data["unix"] is not None, data
        assert abs(data["offset_seconds"]) < 5, data
        assert data["text"]


def test_summary_event_type() -> None:
    events = Collector()
    server = TimeServer(events, port=0).start()
    server.stop()
    assert isinstance(server.summary(), Summary)


def test_ipv6_tcp_and_udp() -> None:
    for udp in (False, True):
        with TimeServer(Collector(), host="::1", port=0, protocol="time", udp=udp) as srv:
            got = get_time("::1", srv.address[1], protocol="time", udp=udp, version=6, timeout=5)
        assert got.server.startswith("[::1]:")
        assert got.offset_seconds is not None and abs(got.offset_seconds) < 5

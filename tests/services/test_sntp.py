"""SNTP over real sockets: netkit's client and server, and a fault-injection server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from netkit.clients.sntp import SntpClient, get_sntp
from netkit.events import Recorder
from netkit.events.sntp import SntpDropped, SntpServed
from netkit.net import NetError
from netkit.protocols import ntp
from netkit.services.sntp_server import SntpSettings
from netkit.services.tcp_time import TimeServer
from tests.helpers import SNTP_SERVE, Server, run

#: builds the reply to one request: (request packet, its number from 0) -> datagrams to send,
#: each (bytes, delay before sending, from another address?)
Reply = list[tuple[bytes, float, bool]]
Script = Callable[[ntp.Packet, int], Reply]


def answer(req: ntp.Packet, **changes: object) -> bytes:
    now = time.time()
    fields: dict[str, object] = dict(
        leap=0,
        version=4,
        mode=4,
        stratum=2,
        refid=b"\x7f\0\0\1",
        root_dispersion=100,
        reference=ntp.to_ntp(now - 10),
        originate=req.transmit,
        receive=ntp.to_ntp(now),
        transmit=ntp.to_ntp(now),
    )
    fields.update(changes)
    return ntp.Packet(**fields).encode()  # type: ignore[arg-type]


@contextmanager
def fault_server(script: Script, limit: int = 20) -> Iterator[int]:
    """A UDP server on 127.0.0.1 answering by *script*; 127.0.0.2 sends the "other address" ones."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    stop = threading.Event()

    def serve() -> None:
        for n in range(limit):
            sock.settimeout(0.1)
            while not stop.is_set():
                try:
                    data, addr = sock.recvfrom(2048)
                    break
                except TimeoutError:
                    continue
            else:
                return
            for payload, delay, elsewhere in script(ntp.Packet.decode(data), n):
                if delay:
                    stop.wait(delay)
                (other if elsewhere else sock).sendto(payload, addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        t.join(5)
        sock.close()
        other.close()
    assert not t.is_alive()


def reject(script: Script, timeout: float = 2.0, samples: int = 1) -> str:
    with fault_server(script) as port:
        with pytest.raises(NetError) as info:
            get_sntp("127.0.0.1", port, timeout=timeout, samples=samples, pause=0.01)
    return str(info.value)


def test_a_good_reply_is_accepted() -> None:
    with fault_server(lambda req, n: [(answer(req), 0, False)]) as port:
        got = get_sntp("127.0.0.1", port, timeout=5)
    assert got.stratum == 2 and got.refid == "127.0.0.1" and got.leap == 0
    assert abs(got.offset_seconds) < 1 and 0 <= got.delay_seconds < 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"mode": 3}, "mode 3 (client) packet: a server answers with mode 4"),
        ({"stratum": 16}, "stratum 16: the server says it is not synchronised"),
        ({"leap": 3}, "leap indicator 3: the server says its clock is not synchronised"),
        ({"stratum": 0, "refid": b"DENY"}, "kiss-o'-death DENY: the server refuses to serve us"),
        ({"stratum": 0, "refid": b"RSTR"}, "kiss-o'-death RSTR: the server refuses to serve us"),
        ({"version": 2}, "NTP version 2"),
        ({"transmit": 0}, "transmit timestamp 0"),
    ],
)
def test_bad_replies_are_refused_with_the_reason(changes: dict[str, object], reason: str) -> None:
    message = reject(lambda req, n: [(answer(req, **changes), 0, False)])
    assert reason in message


def test_a_truncated_reply_is_refused() -> None:
    assert "truncated: 40 bytes" in reject(lambda req, n: [(answer(req)[:40], 0, False)])


def test_a_bogus_originate_is_ignored_until_the_timeout() -> None:
    message = reject(lambda req, n: [(answer(req, originate=0), 0, False)], timeout=0.5)
    assert "no valid reply within 0.5 s" in message
    assert "originate timestamp 0 is not our transmit timestamp" in message


def test_a_bogus_originate_before_the_real_reply_does_no_harm() -> None:
    def script(req: ntp.Packet, n: int) -> Reply:
        return [
            (answer(req, originate=12345, stratum=0, refid=b"DENY"), 0, False),
            (answer(req), 0, False),
        ]

    with fault_server(script) as port:
        assert get_sntp("127.0.0.1", port, timeout=5).stratum == 2


def test_a_reply_from_another_address_is_ignored() -> None:
    message = reject(lambda req, n: [(answer(req), 0, True)], timeout=0.5)
    assert "a reply from 127.0.0.2:" in message and "not from the server" in message


def test_a_duplicated_delayed_reply_is_not_taken_for_the_next_answer() -> None:
    # sample 0's reply comes twice, the copy late, while sample 1 waits; sample 1's own
    # reply says stratum 3 so the test can tell which was kept
    def script(req: ntp.Packet, n: int) -> Reply:
        if n == 0:
            first = answer(req)
            return [(first, 0, False), (first, 0.05, False)]
        return [(answer(req, stratum=3), 0.1, False)]

    with fault_server(script) as port:
        with SntpClient("127.0.0.1", port, timeout=5) as client:
            first = client.sample()
            second = client.sample()
    assert first.packet.stratum == 2 and second.packet.stratum == 3


def test_rate_backs_off_and_says_so() -> None:
    waits: list[float] = []
    notes: list[str] = []

    def script(req: ntp.Packet, n: int) -> Reply:
        if n == 0:
            return [(answer(req, stratum=0, leap=3, refid=b"RATE"), 0, False)]
        return [(answer(req), 0, False)]

    with fault_server(script) as port:
        with SntpClient("127.0.0.1", port, timeout=5, notice=notes.append, sleep=waits.append) as c:
            got = c.query(samples=1, pause=0.5)
    assert got.stratum == 2
    assert waits == [1.0]  # backed off before the retry (at least twice the pause)
    assert notes and "kiss-o'-death RATE: waiting 1 s" in notes[0]


def test_rate_every_time_gives_up() -> None:
    waits: list[float] = []
    with fault_server(lambda req, n: [(answer(req, stratum=0, refid=b"RATE"), 0, False)]) as port:
        with SntpClient("127.0.0.1", port, timeout=5, sleep=waits.append) as c:
            with pytest.raises(NetError, match=r"kiss-o'-death RATE.*4 times: giving up"):
                c.query()
    assert waits == [2.0, 4.0, 8.0]  # twice the 1 s pause, then each RATE doubles it


def test_samples_keep_the_lowest_delay() -> None:
    # the server holds the second request longer in the network (delay before sending)
    def script(req: ntp.Packet, n: int) -> Reply:
        return [(answer(req, stratum=2 + n), 0.2 if n != 1 else 0.0, False)]

    with fault_server(script) as port:
        got = get_sntp("127.0.0.1", port, timeout=5, samples=3, pause=0.01)
    assert got.samples == 3 and got.stratum == 3 and got.delay_seconds < 0.2


def test_the_offset_is_the_servers_clock_minus_ours() -> None:
    def script(req: ntp.Packet, n: int) -> Reply:
        later = ntp.to_ntp(time.time() + 1000.25)
        return [(answer(req, receive=later, transmit=later), 0, False)]

    with fault_server(script) as port:
        got = get_sntp("127.0.0.1", port, timeout=5)
    assert got.offset_seconds == pytest.approx(1000.25, abs=0.05)
    assert got.unix == pytest.approx(time.time() + 1000.25, abs=1)


# --------------------------------------------------------------------------
# netkit's server


def serve(**settings: object) -> TimeServer:
    return TimeServer(
        Recorder(),
        port=0,
        protocol="sntp",
        sntp=SntpSettings(**settings),  # type: ignore[arg-type]
    )


def test_netkits_client_refuses_netkits_default_server() -> None:
    with serve() as srv:
        with pytest.raises(NetError, match="stratum 16: the server says it is not synchronised"):
            get_sntp(*srv.address, timeout=5)


def test_netkits_client_and_server_with_a_claimed_stratum() -> None:
    rec = Recorder()
    settings = SntpSettings(stratum=2, refid=b"LOCL")
    with TimeServer(rec, port=0, protocol="sntp", sntp=settings) as srv:
        got = get_sntp(*srv.address, timeout=5, samples=2, pause=0.01)
        served = rec.wait_for(SntpServed, 2)
    assert got.stratum == 2 and got.refid == "LOCL" and abs(got.offset_seconds) < 0.1
    assert served[0].kind == "reply" and served[0].receive <= served[0].transmit


def test_the_server_answers_only_mode_3_and_never_more_bytes() -> None:
    rec = Recorder()
    with TimeServer(rec, port=0, protocol="sntp", sntp=SntpSettings(stratum=2)) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(srv.address)
            for data in (
                bytes([0b00_100_110]) + bytes(47),  # mode 6
                bytes([0b00_100_111]) + bytes(199),  # mode 7 (monlist)
                ntp.request(1)[:47],
                b"",
            ):
                s.send(data)
            s.send(ntp.request(7) + bytes(100))  # a request with a 100-byte tail
            reply = s.recv(2048)
            assert len(reply) == 48 and ntp.Packet.decode(reply).originate == 7
            s.settimeout(0.2)
            with pytest.raises(TimeoutError):
                s.recv(2048)  # nothing else came back
    counts = srv.summary().counts
    assert counts["answered"] == 1 and counts["dropped_mode"] == 2 and counts["dropped_short"] == 2


def test_cli_serve_and_get_json() -> None:
    with Server(
        *SNTP_SERVE,
        "--stratum",
        "3",
        "--refid",
        "GPS",
    ) as srv:
        assert srv.listening["transport"] == "udp"
        got = run("tcp-time", "get", "--protocol", "sntp", "-p", str(srv.port), "--json")
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)
        for key in (
            "unix",
            "offset_seconds",
            "delay_seconds",
            "stratum",
            "refid",
            "leap",
            "version",
            "root_delay",
            "root_dispersion",
            "server",
        ):
            assert key in data
        assert data["event"] == "time" and data["protocol"] == "sntp"
        assert (data["stratum"], data["refid"], data["leap"], data["version"]) == (3, "GPS", 0, 4)
        served = srv.next_event()
        assert served["event"] == "served" and served["kind"] == "reply"
        assert {"reference", "originate", "receive", "transmit"} <= served.keys()
        human = run("tcp-time", "get", "--protocol", "sntp", "-p", str(srv.port))
        assert human.returncode == 0, human.stderr
        assert b"UTC  offset " in human.stdout and b" \xc2\xb1 " in human.stdout
        assert b"stratum 3, refid GPS, leap 0 (no warning)" in human.stderr
        code, _out, _err = srv.stop()
    assert code == 0


def test_cli_refusal_is_one_error_line_exit_1() -> None:
    with Server(*SNTP_SERVE) as srv:
        got = run("tcp-time", "get", "--protocol", "sntp", "-p", str(srv.port))
        srv.stop()
    assert got.returncode == 1
    lines = got.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: sntp from 127.0.0.1:")
    assert "stratum 16" in lines[0] and "Traceback" not in got.stderr.decode()


def test_cli_kod_deny_exit_1() -> None:
    with fault_server(lambda req, n: [(answer(req, stratum=0, refid=b"DENY"), 0, False)]) as port:
        got = run("tcp-time", "get", "--protocol", "sntp", "-p", str(port))
    assert got.returncode == 1
    assert b"Error: sntp from" in got.stderr and b"kiss-o'-death DENY" in got.stderr


def test_flood_with_rate_10_answers_at_most_the_rate_never_more_bytes_out() -> None:
    rec = Recorder()
    settings = SntpSettings(stratum=2, rate=10)
    with TimeServer(rec, port=0, protocol="sntp", sntp=settings, quiet=True) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.connect(srv.address)
            start = time.monotonic()
            sent_bytes = 0
            for n in range(10_000):
                req = ntp.request(n + 1)
                s.send(req)
                sent_bytes += len(req)
            # wait until the server has read all it will read (its counts stop moving)
            s.settimeout(1.0)
            replies: list[bytes] = []
            while True:
                try:
                    replies.append(s.recv(2048))
                except TimeoutError:
                    break
                if len(replies) > 10_000:
                    break
            elapsed = time.monotonic() - start
    counts = srv.summary().counts
    kinds = [ntp.Packet.decode(r) for r in replies]
    answers = [p for p in kinds if p.stratum == 2]
    kods = [p for p in kinds if p.stratum == 0]
    assert all(p.refid == b"RATE" for p in kods)
    assert len(answers) + len(kods) == len(replies)
    # the bucket holds 10 and refills at 10 a second
    assert len(answers) <= 10 + 10 * elapsed + 1
    assert len(kods) <= 1 + elapsed + 1
    out_bytes = sum(len(r) for r in replies)
    assert out_bytes <= sent_bytes
    read = counts["answered"] + counts.get("kod_rate", 0) + counts.get("dropped_rate", 0)
    print(
        f"flood: sent {10_000} ({sent_bytes} B), server read {read}, answered {len(answers)}, "
        f"RATE {len(kods)}, {out_bytes} B back in {elapsed:.2f} s"
    )


def low_port_socket(family: int, host: str, ports: range) -> socket.socket:
    """A UDP socket bound to a low port (root), the first of *ports* that is free."""
    for port in ports:
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
            return s
        except OSError:
            s.close()
    raise AssertionError(f"no free port in {ports} (the tests run as root)")


def test_the_loop_guard_on_the_wire_and_port_123_answered() -> None:
    rec = Recorder()
    with TimeServer(rec, port=0, protocol="sntp", sntp=SntpSettings(stratum=2)) as srv:
        with low_port_socket(socket.AF_INET, "127.0.0.1", range(1000, 1023)) as low:
            low.settimeout(0.3)
            low.sendto(ntp.request(5), srv.address)
            with pytest.raises(TimeoutError):
                low.recvfrom(2048)  # another server's port: no reply
        dropped = rec.wait_for(SntpDropped)[0]
        assert dropped.reason == "loop" and "below 1024" in dropped.detail
        with low_port_socket(socket.AF_INET, "127.0.0.1", range(123, 124)) as ntp_port:
            ntp_port.settimeout(5)
            ntp_port.sendto(ntp.request(6), srv.address)
            reply, _ = ntp_port.recvfrom(2048)
        assert ntp.check_reply(reply, 6).stratum == 2  # port 123: an NTP peer, answered


def test_ipv6_client_and_server() -> None:
    rec = Recorder()
    with TimeServer(
        rec, host="::1", port=0, protocol="sntp", sntp=SntpSettings(stratum=4, refid=b"LOCL")
    ) as srv:
        got = get_sntp("::1", srv.address[1], version=6, timeout=5)
    assert got.stratum == 4 and got.server.startswith("[::1]:")


def test_human_rendering_of_sntp_events() -> None:
    import io

    from rich.console import Console

    import netkit.render.sntp  # noqa: F401  (the handlers, as the tcp-time commands load them)
    from netkit.events.sntp import SntpTime
    from netkit.render.human import HumanRenderer

    r = HumanRenderer(no_color=True)
    out, err = io.StringIO(), io.StringIO()
    r.out = Console(file=out, width=200, markup=False, highlight=False)
    r.err = Console(file=err, width=200, markup=False, highlight=False)
    r(
        SntpTime(
            protocol="sntp",
            unix=0.5,
            text="1970-01-01 00:00:00.500000 UTC",
            offset_seconds=-0.25,
            delay_seconds=0.002,
            root_distance=0.0115,
            stratum=2,
            refid="GPS\x1b",
            leap=1,
            version=4,
            root_delay=0.001,
            root_dispersion=0.01,
            server="127.0.0.1:123",
            samples=3,
        )
    )
    r(
        SntpServed(
            peer="127.0.0.1:5",
            kind="kod",
            stratum=0,
            leap=3,
            refid="RATE",
            reference=None,
            originate="00000000000000ff",
            receive=1.0,
            transmit=1.5,
            size=48,
        )
    )
    r(SntpDropped(peer="127.0.0.1:6", size=3, reason="short", detail="too short", unlogged_drops=4))
    assert out.getvalue() == "1970-01-01 00:00:00.500000 UTC  offset -0.250000 ± 0.011500 s\n"
    text = err.getvalue()
    assert "stratum 2, refid GPS\\x1b, leap 1 (last minute of the day has 61 seconds)" in text
    assert "lowest delay of 3 samples" in text
    assert "kiss-o'-death RATE" in text and "org 00000000000000ff" in text
    assert "rec 00:00:01.000000 xmt 00:00:01.500000" in text
    assert "3 bytes not answered: too short (+4 more not shown)" in text


def test_the_client_reads_timestamps_across_the_2036_era_boundary() -> None:
    # the client's clock 100 s before 2036-02-07T06:28:16Z, the server's 100 s after
    # it (seconds field already wrapped to 100): an offset of +200 s, not -136 years
    start = time.time()
    shift = ntp.ERA1_UNIX - 100 - start

    def script(req: ntp.Packet, n: int) -> Reply:
        after = ntp.to_ntp(time.time() + shift + 200)
        assert after >> 32 < 200  # era 1: the seconds field wrapped
        return [(answer(req, receive=after, transmit=after), 0, False)]

    with fault_server(script) as port:
        with SntpClient("127.0.0.1", port, timeout=5, clock=lambda: time.time() + shift) as c:
            got = c.query()
    assert got.offset_seconds == pytest.approx(200, abs=0.5)
    assert got.text.startswith("2036-02-07 06:2")

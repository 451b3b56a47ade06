"""udp-echo under abuse: loop guards, no amplification, client bounds under packet loss.

Items 1, 2, 3 and the udp-echo half of 16 of the reliability suite (issue 6).
Real ``netkit`` processes on loopback; root for low ports, raw sockets and nft.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from netkit.events import Event, Recorder
from netkit.events.udp_echo import Reply
from netkit.net import NetError
from netkit.protocols import echo
from netkit.services.udp_echo import UdpEchoServer, send_messages
from tests.helpers import NETKIT, Server, env, run
from tests.profiles import examples
from tests.reliability.util import (
    free_low_port,
    nft_dropped,
    packet_loss,
    spoof,
    summary_of,
)

LOW_PORTS = (7, 19, 53, 123)  # echo, chargen, DNS, NTP: the classic reflection sources
ROUNDS = 250  # datagrams from each low port: 1000 in all


def _exchange(port: int, data: bytes, timeout: float = 5, bind: str = "127.0.0.1") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((bind, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.send(data)
        return s.recv(70_000)


def _low_port_senders() -> tuple[dict[int, socket.socket], list[int]]:
    """A socket bound to each of ports 7, 19, 53, 123 (root); a port some service of this
    machine holds already (a DNS or NTP server) is sent from with a raw socket instead."""
    socks: dict[int, socket.socket] = {}
    spoofed: list[int] = []
    for port in LOW_PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))  # a privileged source port, for real
        except OSError:
            s.close()
            spoofed.append(port)
            continue
        socks[port] = s
    return socks, spoofed


def _flood_from_low_ports(server_port: int) -> float:
    """1000 datagrams from ports 7/19/53/123, then a probe; 0 replies to them. Seconds taken."""
    socks, spoofed = _low_port_senders()
    try:
        t0 = time.monotonic()
        for i in range(ROUNDS):
            for s in socks.values():
                s.sendto(b"ping %d" % i, ("127.0.0.1", server_port))
            for port in spoofed:
                spoof(port, server_port, b"ping %d" % i)
            if i % 25 == 24:
                # a probe queued behind 100 of them: once answered, they were handled
                # (and the next 100 cannot overflow the server's receive buffer)
                assert _exchange(server_port, b"probe") == b"PROBE"
        elapsed = time.monotonic() - t0
        for s in socks.values():
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(70_000)  # not one reply reached a low port
    finally:
        for s in socks.values():
            s.close()
    return elapsed


@pytest.mark.parametrize("quiet", [[], ["--quiet"]], ids=["logging", "batched"])
def test_low_source_ports_zero_replies_drops_counted_one_json_line_a_second(
    quiet: list[str],
) -> None:
    """1000 datagrams from ports 7, 19, 53, 123: 0 replies, 1000 drops counted, ≤ 1 line/s.

    Both receive loops: one datagram at a time with a log, and --quiet's
    batched recvmmsg/sendmmsg loop (no log at all).
    """
    with Server("udp-echo", "serve", "--port", "0", "--json", *quiet) as srv:
        elapsed = _flood_from_low_ports(srv.port)
        code, out, err = srv.stop()
    assert code == 0, err
    counts = summary_of(out)
    assert counts["dropped_low_port"] == len(LOW_PORTS) * ROUNDS
    probes = ROUNDS // 25
    assert counts["replied"] == probes and counts["received"] == len(LOW_PORTS) * ROUNDS + probes
    events = [json.loads(line) for line in out.decode().splitlines()]
    drops = [e for e in events if e["event"] == "datagram" and e["dropped"]]
    print(f"{len(drops)} drop lines for 1000 drops in {elapsed:.2f} s")
    assert (1 if not quiet else 0) <= len(drops) <= 1 + int(elapsed)
    assert all(e["dropped"] == "low_port" and e["replied"] is False for e in drops)
    assert len(drops) + sum(e["unlogged_drops"] for e in drops) <= counts["dropped_low_port"]


def test_low_source_ports_human_log_at_most_one_drop_line_a_second() -> None:
    """The human log: 1000 drops from low ports give at most 1 + seconds-taken log lines."""
    with Server("udp-echo", "serve", "--port", "0", human=True) as srv:
        elapsed = _flood_from_low_ports(srv.port)
        code, _out, err = srv.stop(timeout=10)
    assert code == 0
    text = err.decode()
    lines = [ln for ln in text.splitlines() if "not answered: low port" in ln]
    assert 1 <= len(lines) <= 1 + int(elapsed), text
    assert "dropped low port 1000" in text  # the summary counts every one
    assert "Traceback" not in text


@pytest.mark.parametrize("quiet", [[], ["--quiet"]], ids=["logging", "batched"])
def test_spoofed_own_address_never_answered(quiet: list[str]) -> None:
    """A datagram claiming to come from the server's own address and port: 0 replies."""
    with Server("udp-echo", "serve", "--plain", "--port", "0", "--json", *quiet) as srv:
        for _ in range(100):
            spoof(srv.port, srv.port, b"reflect me")
        assert _exchange(srv.port, b"probe") == b"probe"  # queued behind the 100
        code, out, _err = srv.stop()
    assert code == 0
    counts = summary_of(out)
    assert (counts["received"], counts["replied"], counts["dropped_self"]) == (101, 1, 100)


def test_echo_servers_pointed_at_each_other_two_datagrams_in_all() -> None:
    """A spoofed datagram makes server B (port < 1024) answer server A: A drops it; 2 in all.

    Server B runs on a service port (like inetd's echo on 7). A datagram
    claiming to come from A is sent to B; B answers A, and A does not answer
    B (a source port below 1024), so the ping-pong is one exchange long.
    The other way round, A drops the first datagram: 1 in all.
    """
    low = free_low_port()
    with (
        Server("udp-echo", "serve", "--plain", "--port", "0", "--json") as a,
        Server("udp-echo", "serve", "--plain", "--port", str(low), "--json") as b,
    ):
        spoof(a.port, b.port, b"ping-pong?")
        ev = a.next_event()  # B's reply reached A, which did not answer
        assert (ev["dropped"], ev["peer"]) == ("low_port", f"127.0.0.1:{low}")
        spoof(b.port, a.port, b"pong-ping?")
        # (a second drop within the second is counted, not logged) a probe queued behind it
        assert _exchange(a.port, b"probe") == b"probe"
        code_a, out_a, _ = a.stop()
        code_b, out_b, _ = b.stop()
    assert code_a == code_b == 0
    ca, cb = summary_of(out_a), summary_of(out_b)
    assert (ca["received"], ca["replied"], ca["dropped_low_port"]) == (3, 1, 2)  # 1: the probe
    assert (cb["received"], cb["replied"]) == (1, 1)  # the only reply sent by either


def test_echo_servers_on_high_ports_with_rate_loop_ends_after_burst() -> None:
    """Two servers on ports ≥ 1024 answer each other; with --rate 10 the loop ends: ≤ 24 datagrams.

    Without a guard this ping-pong never ends (both ports look like clients).
    A's per-source bucket (burst 10) empties, A stops answering B, and with
    nothing in flight the exchange is over; the totals stay put.
    """
    with (
        Server("udp-echo", "serve", "--plain", "--rate", "10", "--port", "0", "--json") as a,
        Server("udp-echo", "serve", "--plain", "--rate", "10", "--port", "0", "--json") as b,
    ):
        spoof(b.port, a.port, b"ping-pong?")
        for _ in range(50):  # bounded: the loop must end within a few dozen datagrams
            ev = a.next_event()
            if ev["dropped"]:
                break
        else:
            raise AssertionError("A never stopped answering B")
        assert ev["dropped"] == "rate"
        # the drop ended the loop; a probe from another address (its own bucket) is queued
        # behind anything still in flight
        assert _exchange(a.port, b"probe", bind="127.0.0.2") == b"probe"
        code_a, out_a, _ = a.stop()
        code_b, out_b, _ = b.stop()
    assert code_a == code_b == 0
    ca, cb = summary_of(out_a), summary_of(out_b)
    total = ca["received"] + cb["received"] - 1  # the probe was ours
    print(f"ping-pong with --rate 10: {total} datagrams in all")
    assert total <= 24
    assert ca["dropped_rate"] + cb.get("dropped_rate", 0) == 1  # one drop ended it


@pytest.mark.parametrize("quiet_side", ["a", "b"])
def test_default_echo_servers_on_high_ports_loop_ends_within_130_datagrams(quiet_side: str) -> None:
    """Two default servers (ports ≥ 1024, no --rate) set off by a spoofed datagram: ≤ 130 in all.

    Each sees the other as a client.  The loop guard (``echo.LoopGuard``:
    a peer that sends back our own last reply 64 times in a row, each within
    50 ms) makes one of them stop answering, and the ping-pong is over.  One
    side runs the batched --quiet path, the other the logging path.
    """
    streak = echo.LOOP_STREAK
    a_args = ["--quiet"] if quiet_side == "a" else []
    b_args = ["--quiet"] if quiet_side == "b" else []
    with (
        Server("udp-echo", "serve", "--plain", "--port", "0", "--json", *a_args) as a,
        Server("udp-echo", "serve", "--plain", "--port", "0", "--json", *b_args) as b,
    ):
        logging_side = b if quiet_side == "a" else a
        spoof(b.port, a.port, b"ping-pong?")
        # the logging side logs every datagram it answers, then (at most) one drop:
        # reading streak of them means the exchange went on at least that long
        for _ in range(streak):
            logging_side.next_event()
        # datagrams are handled in order: once a probe from another address is
        # answered by each, everything of the ping-pong before it has been handled
        assert _exchange(a.port, b"probe", bind="127.0.0.2") == b"probe"
        assert _exchange(b.port, b"probe", bind="127.0.0.2") == b"probe"
        code_a, out_a, _ = a.stop()
        code_b, out_b, _ = b.stop()
    assert code_a == code_b == 0
    ca, cb = summary_of(out_a), summary_of(out_b)
    total = ca["received"] + cb["received"] - 2  # the probes were ours
    print(f"default ping-pong: {total} datagrams in all; summaries {ca} {cb}")
    assert ca.get("dropped_loop", 0) + cb.get("dropped_loop", 0) == 1  # one drop ended it
    assert streak <= total <= 2 * streak + 2


def test_loop_guard_a_client_repeating_one_message_loses_one_reply_then_is_answered() -> None:
    """The guard's price, on a clock of our own: 64 identical requests each within 50 ms of
    the reply lose one reply; the next one, after a pause past the window, is answered."""
    guard = echo.LoopGuard()
    t = 0.0
    answered = []
    for _ in range(echo.LOOP_STREAK + 1):
        answered.append(not guard.check(("127.0.0.1", 5000), b"same", b"same", t))
        t += 0.001
    assert answered.count(False) == 1 and answered[-1] is False
    assert not guard.check(("127.0.0.1", 5000), b"same", b"same", t + 0.2)
    # upper-casing: a client sending lower case never matches its (upper-case) reply
    lower = echo.LoopGuard()
    assert not any(lower.check("c", b"hi", b"HI", i * 0.001) for i in range(200))
    # a different peer has its own streak
    assert not guard.check(("127.0.0.1", 5001), b"same", b"same", t)


# -- item 2: no amplification ------------------------------------------------


@pytest.fixture(scope="module")
def echo_ports() -> Iterator[dict[tuple[str, str], int]]:
    """Real server sockets: --quiet processes (the batched loop) and, for the loop that
    logs each datagram, in-process servers (a process would need its log read)."""
    processes = {
        mode: Server("udp-echo", "serve", f"--{mode}", "--port", "0", "--json", "--quiet")
        for mode in ("plain", "upper")
    }
    logging = {
        mode: UdpEchoServer(lambda event: None, port=0, upper=mode == "upper").start()
        for mode in ("plain", "upper")
    }
    ports = {(mode, "batched"): srv.port for mode, srv in processes.items()}
    ports |= {(mode, "logging"): srv.address[1] for mode, srv in logging.items()}
    yield ports
    for srv in processes.values():
        srv.stop()
        srv.__exit__()
    for service in logging.values():
        service.stop()


payloads = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
    # large ones built by repetition (hypothesis is slow to draw 64 KiB byte by byte)
    st.builds(
        lambda seed, n: (seed * (n // len(seed) + 1))[:n],
        st.binary(min_size=1, max_size=64),
        st.integers(60_000, 65_507),
    ),
)


@pytest.mark.parametrize("path", ["batched", "logging"])
@pytest.mark.parametrize("mode", ["plain", "upper"])
@settings(
    max_examples=examples(2500),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=payloads)
@example(data=b"")
@example(data=b"\xff" * 65_507)
@example(data="ß ﬁ ǆ ŉ ΐ".encode())  # characters str.upper() would make longer
def test_reply_never_longer_than_request(
    echo_ports: dict[tuple[str, str], int], mode: str, path: str, data: bytes
) -> None:
    """2500 payloads a mode and loop (random, non-ASCII, empty, 65,507 B): len(reply) ≤ len."""
    reply = _exchange(echo_ports[mode, path], data)
    assert len(reply) <= len(data)
    assert reply == (data.upper() if mode == "upper" else data)


# -- item 3: the client's bounds -----------------------------------------------


def test_send_to_closed_port_exits_1_well_under_a_second() -> None:
    """A closed port: exit 1 in < 0.5 s (with --timeout 5), one error line, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    res = run("udp-echo", "send", "--port", str(port), "--timeout", "5", "hello")
    took = time.monotonic() - t0
    print(f"closed port: exit {res.returncode} after {took:.3f} s")
    assert res.returncode == 1
    assert took < 0.5
    assert res.stderr.decode().count("\n") == 1 and b"no server listening" in res.stderr


def test_send_silent_server_run_bounded_by_timeout_times_tries() -> None:
    """No reply ever: exit 1 within timeout × (retries + 1) + 0.5 s = 0.2 × 4 + 0.5 = 1.3 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        res = run("udp-echo", "send", "-p", str(port), "-t", "0.2", "-r", "3", "hello")
        took = time.monotonic() - t0
        silent.setblocking(False)
        tries = 0
        for _ in range(10):
            try:
                silent.recv(100)
            except BlockingIOError:
                break
            tries += 1
    print(f"silent server: exit {res.returncode} after {took:.3f} s, {tries} tries")
    assert res.returncode == 1 and b"4 tries" in res.stderr
    assert tries == 4
    assert 0.8 <= took <= 0.2 * 4 + 0.5


@pytest.mark.timeout(60)
def test_ten_percent_loss_retries_3_succeeds_999_of_1000() -> None:
    """10% loss (nft), 1000 requests, --retries 3: ≥ 99.9% succeed, each ≤ timeout × 4 + 0.5 s."""
    timeout, retries, n = 0.05, 3, 1000
    with Server("udp-echo", "serve", "--plain", "--quiet", "--port", "0", "--json") as srv:
        with packet_loss(srv.port, 10) as table:
            times: list[float] = []
            failures = 0
            done = 0
            rec = Recorder()
            while done < n:  # bounded: each pass ends with a reply or a failure at least
                last = [time.monotonic()]

                def timed(event: Event, last: list[float] = last) -> None:
                    now = time.monotonic()
                    times.append(now - last[0])  # this request, all its tries
                    last[0] = now
                    rec(event)

                try:
                    send_messages(
                        timed,
                        (b"request %04d" % i for i in range(done, n)),
                        port=srv.port,
                        timeout=timeout,
                        retries=retries,
                    )
                except NetError:  # this one got no reply after 4 tries: go on with the next
                    times.append(time.monotonic() - last[0])
                    failures += 1
                done = len(rec.of(Reply)) + failures
            dropped = nft_dropped(table)
        code, _out, _err = srv.stop()
    assert code == 0
    replies = rec.of(Reply)
    tries = sum(r.tries for r in replies)
    print(
        f"10% loss: {len(replies)} of {n} answered, {failures} failed, {dropped} of "
        f"{tries + failures * (retries + 1)} requests dropped by nft, "
        f"slowest {max(times):.3f} s"
    )
    assert [r.data for r in replies] == sorted({r.data for r in replies})  # in order, once each
    assert len(replies) + failures == n
    assert len(replies) >= 0.999 * n
    assert 0.05 < dropped / (tries + failures * (retries + 1)) < 0.15  # the loss was real
    assert max(times) <= timeout * (retries + 1) + 0.5


# -- item 16: --json into head -1 -----------------------------------------------


def test_serve_json_piped_to_head_1_no_traceback() -> None:
    """udp-echo serve --json | head -1: the listening line, then exit 1 quietly, no traceback."""
    server = subprocess.Popen(
        [NETKIT, "udp-echo", "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env(),
    )
    try:
        assert server.stdout is not None and server.stderr is not None
        head = subprocess.Popen(["head", "-1"], stdin=server.stdout, stdout=subprocess.PIPE)
        server.stdout.close()  # only head reads it now
        first, _ = head.communicate(timeout=10)
        listening = json.loads(first)
        assert listening["event"] == "listening" and head.returncode == 0
        # head is gone: the next line the server writes meets a closed pipe
        assert _exchange(listening["port"], b"after head") == b"AFTER HEAD"
        _, err = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=5)
    # README: a closed stdout ends the command quietly with status 1 (not killed by SIGPIPE)
    assert server.returncode == 1
    assert b"Traceback" not in err

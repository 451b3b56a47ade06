"""creosote listen --forward into a real rsyslogd (Debian's), started by the test.

rsyslogd runs in the foreground with a config of its own: imudp / imtcp /
imrelp (Debian's rsyslog-relp) on loopback ports, every record written by
omfile as its ``jsonmesg`` (one JSON object a line: msg, hostname,
syslogseverity, structured-data ...).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netkit.events import Event, Notice
from netkit.events.creosote import Message
from netkit.protocols.records import Record
from netkit.services.creosote import CreosoteListener
from netkit.services.forward import Forwarder, parse_target
from tests.helpers import NETKIT, Server, env, peer
from tests.reliability.util import summary_of
from tests.stream_util import free_port

PEER_SECONDS = 15


class Counting:
    """A sink that counts Message events and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.messages = 0
        self.notices: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            if isinstance(event, Message):
                self.messages += 1
            else:
                self.notices.append(event)
            self._cond.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.messages >= n, timeout), (self.messages, n)


class Rsyslog:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tcp = free_port(socket.SOCK_STREAM)
        self.udp = free_port(socket.SOCK_DGRAM)
        self.relp = free_port(socket.SOCK_STREAM)
        self.out = tmp / "out.jsonl"
        self.conf = conf = tmp / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{tmp}" maxMessageSize="64k")\n'
            'module(load="imudp")\nmodule(load="imtcp")\nmodule(load="imrelp")\n'
            f'input(type="imudp" address="127.0.0.1" port="{self.udp}")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.tcp}")\n'
            f'input(type="imrelp" address="127.0.0.1" port="{self.relp}")\n'
            'template(name="j" type="list") { property(name="jsonmesg") constant(value="\\n") }\n'
            f'*.* action(type="omfile" file="{self.out}" template="j")\n'
        )
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [peer("rsyslogd"), "-n", "-f", str(self.conf), "-i", str(self.tmp / "pid")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.proc = proc
        self._wait_listening()
        return proc

    def terminate(self) -> bytes:
        """SIGTERM, and wait until rsyslogd has exited (its output)."""
        self.proc.terminate()
        out = self.proc.communicate(timeout=PEER_SECONDS)[0]
        assert self.proc.returncode == 0, (self.proc.returncode, out)
        return out

    def restart(self) -> None:
        """Start rsyslogd again: the same config, the same ports, the same output file."""
        self._start()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + PEER_SECONDS
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.communicate(timeout=5)[0]
            try:
                for port in (self.tcp, self.relp):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                threading.Event().wait(0.05)  # nothing to wait on but the port itself
        raise AssertionError("rsyslogd did not listen")

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        text = self.out.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def wait_records(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            got = self.records()
            if len(got) >= n:
                return got
            threading.Event().wait(0.1)  # rsyslog writes a file: nothing to select on
        return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate(timeout=5)


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    r = Rsyslog(tmp_path)
    try:
        yield r
    finally:
        r.stop()


_NUMBER = re.compile(rb"record (\d{5})")


class Tracking(Forwarder):
    """A Forwarder that also remembers *which* records it dropped and sent again.

    It holds the forwarder's own lock (a re-entrant one) around the real
    submit, so a record is known to be dropped exactly when the counter moved.
    """

    def __init__(self, url: str) -> None:
        super().__init__(parse_target(url))
        self.dropped_numbers: set[int] = set()
        self.resent_numbers: set[int] = set()

    def submit(self, record: Record, peer: str) -> None:
        with self._cond:
            before = self.dropped
            super().submit(record, peer)
            if self.dropped != before:
                self.dropped_numbers.add(int(_NUMBER.findall(record.message)[0]))

    def _relp_requeue(self) -> int:
        with self._cond:
            for _txnr, message in self._inflight:
                self.resent_numbers.add(int(_NUMBER.findall(message)[0]))
            return super()._relp_requeue()


def killer(rsyslog: Rsyslog) -> tuple[Callable[[], None], threading.Thread]:
    """What kills rsyslogd (SIGTERM, waited for) and starts it again 2 s later on the
    same port, and the thread that restarts it (join it)."""

    def restart_in_two_seconds() -> None:
        threading.Event().wait(2.0)  # the scenario itself: rsyslogd is gone for 2 s
        rsyslog.restart()

    restarter = threading.Thread(target=restart_in_two_seconds)

    def kill_and_restart() -> None:
        rsyslog.terminate()
        restarter.start()

    return kill_and_restart, restarter


def numbers_of(got: list[dict[str, Any]]) -> list[int]:
    return [int(r["msg"].split()[1]) for r in got]


def send_records(
    listener: CreosoteListener,
    sink: Counting,
    n: int,
    *,
    pause_at: int | None = None,
    pause: Any = None,
) -> None:
    """n JSON-line records over UDP to *listener*, paced by what it has received."""
    address = listener.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            level = ("info", "warning", "error")[i % 3]
            record = {"level": level, "logger": "app.worker", "message": f"record {i:05d} é"}
            s.sendto(json.dumps(record).encode(), address)
            if i % 100 == 99:
                sink.wait(i + 1)
            if pause_at is not None and i == pause_at:
                pause()
    sink.wait(n)


def test_10000_records_over_tcp_arrive_in_order(rsyslog: Rsyslog) -> None:
    sink = Counting()
    forwarder = Forwarder(parse_target(f"syslog+tcp://127.0.0.1:{rsyslog.tcp}"))
    n = 10_000
    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        start = time.monotonic()
        send_records(listener, sink, n)
        got = rsyslog.wait_records(n)
        elapsed = time.monotonic() - start
    assert len(got) == n, (len(got), sink.notices[-3:])
    assert [r["msg"] for r in got] == [f"record {i:05d} é" for i in range(n)]
    assert [int(r["syslogseverity"]) for r in got[:3]] == [6, 4, 3]
    assert {r["programname"] for r in got} == {"app.worker"}
    assert {r["hostname"] for r in got} == {"127.0.0.1"}
    assert 'logger="app.worker"' in got[0]["structured-data"]
    assert 'dialect="json"' in got[0]["structured-data"]
    assert forwarder.sent == n and forwarder.dropped == 0
    assert listener.counts["forwarded"] == n
    print(f"{n} records in {elapsed:.2f} s: {n / elapsed:.0f} records/s")


def test_rsyslog_stopped_midway_every_record_arrives_or_is_counted(rsyslog: Rsyslog) -> None:
    sink = Counting()
    forwarder = Forwarder(parse_target(f"syslog+tcp://127.0.0.1:{rsyslog.tcp}?queue=200"))
    n = 4000

    def stop_for_two_seconds() -> None:
        rsyslog.proc.send_signal(signal.SIGSTOP)
        threading.Event().wait(2.0)  # the scenario itself: rsyslog is away for 2 s
        rsyslog.proc.send_signal(signal.SIGCONT)

    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        pauser = threading.Thread(target=stop_for_two_seconds)
        send_records(listener, sink, n, pause_at=n // 2, pause=pauser.start)
        pauser.join(10)
    # the listener has stopped: its forwarder sent everything or counted it
    assert forwarder.sent + forwarder.dropped == n
    got = rsyslog.wait_records(forwarder.sent)
    assert len(got) == forwarder.sent, (len(got), forwarder.sent, forwarder.dropped)
    assert listener.counts["forwarded"] + listener.counts["forward_dropped"] == n
    numbers = [int(r["msg"].split()[1]) for r in got]
    assert numbers == sorted(numbers)  # in order, whatever was dropped
    print(f"sent {forwarder.sent}, dropped {forwarder.dropped} (queue of 200)")


@pytest.mark.parametrize("moment", ["after-a-lull", "mid-stream"])
def test_rsyslog_killed_and_restarted_every_record_arrives_or_is_counted(
    rsyslog: Rsyslog, moment: str
) -> None:
    """rsyslogd really stops (SIGTERM, waited for) and 2 s later starts again on the same
    port with the same config, in the middle of 4,000 records.

    What a dead connection had not acknowledged goes out again on the next one;
    the queue holds what arrives meanwhile and counts what it cannot.
    ``after-a-lull``: rsyslogd has read everything when it stops, so it closes
    with a FIN, and the records written into the dead connection before the
    sender noticed are sent again: exact, each record once.  ``mid-stream``:
    records keep coming while it stops; when it still had some unread in its
    socket its kernel resets the connection, and those (acknowledged, never
    read) are lost for any plain TCP syslog sender: netkit reports and counts
    the reset, names RELP in the warning, and everything else is exact: the
    records lost are one run (the tail of what rsyslogd's TCP acknowledged and
    its process never read), every other record arrived or was dropped and
    counted.
    """
    sink = Counting()
    forwarder = Tracking(f"syslog+tcp://127.0.0.1:{rsyslog.tcp}?queue=1000")
    n = 4000
    kill_and_restart, restarter = killer(rsyslog)

    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        if moment == "after-a-lull":

            def pause() -> None:
                sink.wait(n // 2 + 1)
                assert forwarder.wait_idle(10)  # all acknowledged: rsyslogd read it all
                kill_and_restart()

        else:

            def pause() -> None:
                threading.Thread(target=kill_and_restart).start()

        send_records(listener, sink, n, pause_at=n // 2, pause=pause)
        restarter.join(PEER_SECONDS * 2)
        assert not restarter.is_alive()
        assert forwarder.wait_idle(20)
    assert forwarder.sent + forwarder.dropped == n
    assert listener.counts["forwarded"] + listener.counts.get("forward_dropped", 0) == n
    warnings = [e.message for e in sink.notices if isinstance(e, Notice)]
    got = rsyslog.wait_records(forwarder.sent, timeout=30 if forwarder.resets == 0 else 5)
    numbers = numbers_of(got)
    arrived = set(numbers)
    lost = sorted(set(range(n)) - arrived - forwarder.dropped_numbers)
    print(
        f"{moment}: sent {forwarder.sent}, dropped {forwarder.dropped}, resent "
        f"{forwarder.resent}, resets {forwarder.resets}; rsyslog wrote {len(numbers)}, "
        f"lost {len(lost)}"
    )
    assert len(numbers) == len(arrived)  # none twice
    assert numbers == sorted(numbers)  # in order
    assert any("connected again" in m for m in warnings), warnings
    assert forwarder.dropped > 0  # 2 s of records do not fit a queue of 1000
    assert any("records dropped (queue of 1000 full)" in m for m in warnings), warnings
    assert not arrived & forwarder.dropped_numbers  # a dropped record never arrives
    assert len(forwarder.dropped_numbers) == forwarder.dropped
    assert len(arrived) + len(lost) == forwarder.sent  # lost ones were acknowledged by TCP
    assert forwarder.resets in (0, 1), warnings  # one connection died, and only once
    if moment == "after-a-lull":
        assert forwarder.resets == 0, warnings
        assert forwarder.resent >= 1  # the first record after the stop went into the dead one
        assert lost == [], warnings
        assert numbers[: n // 2 + 1] == list(range(n // 2 + 1))
    elif forwarder.resets == 0:
        assert lost == [], warnings  # a FIN: rsyslogd read everything its TCP acknowledged
    else:
        assert listener.counts["forward_resets"] == forwarder.resets
        resets = [m for m in warnings if "reset the connection" in m]
        assert len(resets) == 1 and "relp://127.0.0.1:PORT" in resets[0], warnings
        if lost:  # one run of records, read by nobody: never a gap anywhere else
            assert lost == list(range(lost[0], lost[-1] + 1)), lost


# -- RELP: every record acknowledged by rsyslogd's imrelp -----------------------------------


@pytest.mark.parametrize("scheme", ["relp", "syslog+relp"])
def test_10000_records_over_relp_arrive_in_order(rsyslog: Rsyslog, scheme: str) -> None:
    sink = Counting()
    forwarder = Forwarder(parse_target(f"{scheme}://127.0.0.1:{rsyslog.relp}"))
    n = 10_000
    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        start = time.monotonic()
        send_records(listener, sink, n)
        assert forwarder.wait_idle(30), (forwarder.sent, sink.notices[-3:])
        elapsed = time.monotonic() - start  # every record acknowledged by imrelp
        got = rsyslog.wait_records(n)
    assert len(got) == n, (len(got), sink.notices[-3:])
    assert numbers_of(got) == list(range(n))
    assert [r["msg"] for r in got] == [f"record {i:05d} é" for i in range(n)]
    assert [int(r["syslogseverity"]) for r in got[:3]] == [6, 4, 3]
    assert {r["programname"] for r in got} == {"app.worker"}
    assert {r["hostname"] for r in got} == {"127.0.0.1"}
    assert {r["inputname"] for r in got} == {"imrelp"}
    assert 'logger="app.worker"' in got[0]["structured-data"]
    assert 'dialect="json"' in got[0]["structured-data"]
    assert (forwarder.sent, forwarder.dropped, forwarder.resent) == (n, 0, 0)
    assert listener.counts["forwarded"] == n
    assert [e for e in sink.notices if isinstance(e, Notice)] == []
    print(f"RELP: {n} records acknowledged in {elapsed:.2f} s: {n / elapsed:.0f} records/s")


def test_the_netkit_process_forwards_over_relp_and_sums_up(rsyslog: Rsyslog) -> None:
    """``netkit creosote listen --forward relp://...``: the real command, SIGTERM, summary."""
    n = 500
    url = f"relp://127.0.0.1:{rsyslog.relp}"
    args = ("creosote", "listen", "--port", "0", "--json", "--forward", url)
    with Server(*args, collect=True) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(n):
                s.sendto(b"<11>app: line %d" % i, ("127.0.0.1", srv.port))
                if i % 50 == 49:  # paced by what the listener has shown
                    srv.wait_count("message", i + 1)
        got = rsyslog.wait_records(n)
        code, out, err = srv.stop(signal.SIGTERM)
    assert code == 0, err
    assert [r["msg"] for r in got] == [f"line {i}" for i in range(n)]
    counts = summary_of(out)
    assert counts["forwarded"] == n, counts
    assert "forward_dropped" not in counts and "forward_resent" not in counts, counts
    assert b"forward to" not in err, err  # no warning at all


@pytest.mark.parametrize("queue", [10_000, 200])
def test_relp_rsyslog_stopped_for_two_seconds_is_exact(rsyslog: Rsyslog, queue: int) -> None:
    """SIGSTOP for 2 s mid-stream: the window fills and waits; nothing is sent twice.

    With the default queue every record arrives once, in order; with a queue
    of 200 the overflow is dropped, and exactly the records not dropped arrive.
    """
    sink = Counting()
    forwarder = Tracking(f"relp://127.0.0.1:{rsyslog.relp}?queue={queue}")
    n = 4000

    def stop_for_two_seconds() -> None:
        rsyslog.proc.send_signal(signal.SIGSTOP)
        threading.Event().wait(2.0)  # the scenario itself: rsyslogd is away for 2 s
        rsyslog.proc.send_signal(signal.SIGCONT)

    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        pauser = threading.Thread(target=stop_for_two_seconds)
        send_records(listener, sink, n, pause_at=n // 2, pause=pauser.start)
        pauser.join(10)
        assert forwarder.wait_idle(30)
    got = rsyslog.wait_records(forwarder.sent)
    numbers = numbers_of(got)
    print(f"queue {queue}: sent {forwarder.sent}, dropped {forwarder.dropped}")
    assert forwarder.resent == 0 and forwarder.reconnects == 0  # one connection throughout
    assert numbers == sorted(set(range(n)) - forwarder.dropped_numbers)
    assert forwarder.sent + forwarder.dropped == n == len(numbers) + forwarder.dropped
    assert listener.counts["forwarded"] == forwarder.sent
    if queue == 10_000:
        assert forwarder.dropped == 0
    else:
        assert forwarder.dropped > 0  # 2 s of records do not fit 200 + the window of 128


@pytest.mark.parametrize("moment", ["after-a-lull", "mid-stream"])
def test_relp_rsyslog_killed_and_restarted_nothing_is_lost_uncounted(
    rsyslog: Rsyslog, moment: str
) -> None:
    """rsyslogd SIGTERMed (waited for) and started again 2 s later, in the middle of 4,000
    records: every record arrives or is counted as dropped, the two add up to what was
    sent, and a record arrives twice only if it was sent again (its acknowledgement was
    lost with the connection: at-least-once)."""
    sink = Counting()
    forwarder = Tracking(f"relp://127.0.0.1:{rsyslog.relp}?queue=1000")
    n = 4000
    kill_and_restart, restarter = killer(rsyslog)

    with CreosoteListener(sink, port=0, forwarders=[forwarder]) as listener:
        if moment == "after-a-lull":

            def pause() -> None:
                sink.wait(n // 2 + 1)
                assert forwarder.wait_idle(10)  # every record acknowledged
                kill_and_restart()

        else:

            def pause() -> None:
                threading.Thread(target=kill_and_restart).start()

        send_records(listener, sink, n, pause_at=n // 2, pause=pause)
        restarter.join(PEER_SECONDS * 2)
        assert not restarter.is_alive()
        assert forwarder.wait_idle(20)
    warnings = [e.message for e in sink.notices if isinstance(e, Notice)]
    assert forwarder.sent + forwarder.dropped == n
    assert listener.counts["forwarded"] + listener.counts.get("forward_dropped", 0) == n
    assert listener.counts.get("forward_resent", 0) == forwarder.resent
    got = rsyslog.wait_records(forwarder.sent)
    numbers = numbers_of(got)
    arrived = set(numbers)
    twice = len(numbers) - len(arrived)
    print(
        f"RELP {moment}: sent {forwarder.sent}, dropped {forwarder.dropped}, resent "
        f"{forwarder.resent}; rsyslog wrote {len(numbers)}, {len(arrived)} distinct, "
        f"{twice} twice"
    )
    # nothing lost uncounted: what did not arrive is exactly what was dropped
    assert arrived | forwarder.dropped_numbers == set(range(n))
    assert not arrived & forwarder.dropped_numbers
    assert len(arrived) + forwarder.dropped == n
    assert len(arrived) == forwarder.sent  # acknowledged = arrived
    # duplicates only among the records sent again, each at most once more
    duplicated = {i for i in arrived if numbers.count(i) > 1}
    assert duplicated <= forwarder.resent_numbers
    assert twice <= forwarder.resent and all(numbers.count(i) == 2 for i in duplicated)
    first_seen = list(dict.fromkeys(numbers))
    assert first_seen == sorted(first_seen)  # in order, the resent ones first on the new connection
    assert forwarder.resets == 0  # a reset loses nothing over RELP: not a TCP-style reset
    assert forwarder.dropped > 0  # 2 s of records do not fit a queue of 1000
    assert any("records dropped (queue of 1000 full)" in m for m in warnings), warnings
    assert any("connected again" in m for m in warnings), warnings
    if moment == "after-a-lull":
        # all acknowledged before the stop: what went into the dead connection (before the
        # sender saw serverclose) never reached rsyslogd, so nothing arrives twice
        assert twice == 0, warnings
        assert numbers[: n // 2 + 1] == list(range(n // 2 + 1))


def test_udp_and_lf_framing(rsyslog: Rsyslog) -> None:
    sink = Counting()
    forwarders = [
        Forwarder(parse_target(f"syslog+udp://127.0.0.1:{rsyslog.udp}")),
        Forwarder(parse_target(f"syslog+tcp://127.0.0.1:{rsyslog.tcp}?framing=lf")),
    ]
    with CreosoteListener(sink, port=0, forwarders=forwarders) as listener:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<11>app: line one\nline two", listener.address)
            sink.wait(1)
        got = rsyslog.wait_records(2)
    assert len(got) == 2
    # rsyslog escapes control characters it receives as #012 (its default); LF framing
    # writes the newline that way itself, so that it does not end the record
    assert [r["msg"] for r in got] == ["line one#012line two"] * 2
    assert all(r["syslogseverity"] in ("3", 3) for r in got)


def test_forward_urls_are_checked() -> None:
    for bad in (
        "http://x:1",
        "syslog+tcp://x",
        "syslog+tcp://x:1?framing=cr",
        "syslog+udp://x:1?framing=lf",
        "syslog+tcp://x:1?queue=0",
        "syslog+tcp://x:1?nope=1",
        "syslog+tcp://x:99999",
        "relp://x",
        "relp://x:1?framing=lf",
        "syslog+relp://x:1?queue=-1",
        "relp+tcp://x:1",
        # issue 14: the authority is refused before anything starts, never half-read
        "syslog+tcp://[::1:514",
        "syslog+tcp://[::1]]:514",
        "syslog+tcp://[127.0.0.1]:514",
        "syslog+tcp://[zz]:514",
        "syslog+tcp://lo\x01cal:514",
        "syslog+tcp://local host:514",
        "syslog+tcp://x:514\n",  # urlsplit alone would drop the newline
        "syslog+tcp://x\t:514",
        "syslog+tcp://x\u202e:514",
        "syslog+tcp://-x:514",
        "syslog+tcp://x\x1b[31m:514",
    ):
        with pytest.raises(ValueError):
            parse_target(bad)
    for url, host in (
        ("syslog+tcp://a_b.example:514", "a_b.example"),
        ("syslog+tcp://[fe80::1%25lo]:514", "fe80::1%lo"),
        ("syslog+udp://LocalHost:514", "localhost"),
    ):
        assert parse_target(url).host == host
    for url in ("relp://[::1]:2514?queue=7", "syslog+relp://[::1]:2514?queue=7"):
        t = parse_target(url)
        assert (t.transport, t.host, t.port, t.framing, t.queue, str(t)) == (
            "relp",
            "::1",
            2514,
            "relp",
            7,
            "relp://[::1]:2514",
        )
    t = parse_target("syslog+tcp://[::1]:514?framing=lf&queue=5")
    assert (t.host, t.port, t.framing, t.queue, str(t)) == (
        "::1",
        514,
        "lf",
        5,
        "syslog+tcp://[::1]:514?framing=lf",
    )


def test_a_stalled_receiver_fills_the_queue_and_drops_are_counted() -> None:
    """A TCP receiver that stops reading: the queue fills, drops are counted and reported."""
    from netkit.protocols.records import Record

    notices: list[str] = []
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server.bind(("127.0.0.1", 0))
        server.listen()
        target = parse_target(f"syslog+tcp://127.0.0.1:{server.getsockname()[1]}?queue=10")
        forwarder = Forwarder(target, notify=lambda level, msg: notices.append(msg))
        forwarder.start()
        n = 5000
        for i in range(n):
            forwarder.submit(Record("json", b"x" * 500 + b" %d" % i), "127.0.0.1:1")
        assert forwarder.dropped > 0
        conn, _ = server.accept()
        received = bytearray()
        with conn:
            closer = threading.Thread(target=forwarder.close, args=(5.0,))
            closer.start()
            conn.settimeout(10)
            while chunk := conn.recv(1 << 16):  # until close() has sent all and closed
                received += chunk
            closer.join(10)
    frames = received.count(b"<14>1 ")
    assert forwarder.sent + forwarder.dropped == n
    assert frames == forwarder.sent
    assert any("records dropped (queue of 10 full)" in m for m in notices)
    assert len([m for m in notices if "dropped" in m]) <= 3  # at most once a second


@pytest.mark.parametrize(
    "url",
    ["syslog+tcp://[::1]", "syslog+tcp://[::1:", "syslog+tcp://lo\x01cal:", "syslog+tcp://x y:"],
)
def test_a_bad_forward_url_is_one_line_and_exit_2(url: str) -> None:
    res = subprocess.run(
        [NETKIT, "creosote", "listen", "--port", "0", "--forward", url + "514"],
        capture_output=True,
        timeout=20,
        env=env(),
    )
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.decode().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--forward" in errors[0], res.stderr
    assert "\x1b" not in res.stderr.decode() and "Traceback" not in res.stderr.decode()


def test_forward_to_an_ipv6_receiver_in_brackets() -> None:
    """``--forward syslog+tcp://[::1]:PORT``: the real command reaches a receiver on ::1."""
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as receiver:
        receiver.settimeout(20)
        url = f"syslog+tcp://[::1]:{receiver.getsockname()[1]}?framing=lf"
        with Server("creosote", "listen", "--port", "0", "--json", "--forward", url) as srv:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"<11>app: over six", ("127.0.0.1", srv.port))
            conn, _ = receiver.accept()
            with conn:
                conn.settimeout(20)
                got = b""
                while not got.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    assert chunk, got
                    got += chunk
            code, _out, err = srv.stop(signal.SIGTERM)
    assert code == 0, err
    assert got.startswith(b"<11>1 ") and got.endswith(b"over six\n"), got

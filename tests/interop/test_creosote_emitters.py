"""creosote listen against the real emitters of each dialect, and a hostile corpus (UDP)."""

from __future__ import annotations

import gzip
import json
import logging
import logging.handlers
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from netkit.events.creosote import Message
from netkit.services.creosote import CreosoteListener
from tests.helpers import NETKIT, Server, env, peer
from tests.sink import Collector


def run_logger(name: str, handler: logging.Handler, *calls: tuple[str, str]) -> None:
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    try:
        for level, text in calls:
            if level == "exception":
                try:
                    {"present": 1}["missing"]
                except KeyError:
                    log.exception(text)
            else:
                getattr(log, level)(text)
    finally:
        log.removeHandler(handler)
        handler.close()


def test_datagram_handler_pickles_are_shown_safely() -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        handler = logging.handlers.DatagramHandler("127.0.0.1", listener.address[1])
        run_logger("app.db", handler, ("warning", "slow query"), ("exception", "step 3 failed"))
        warn, err = sink.wait_for(Message, 2)
    assert (warn.dialect, warn.level, warn.logger, warn.data) == (
        "pickle",
        "warning",
        "app.db",
        b"slow query",
    )
    lines = err.data.decode().splitlines()
    assert lines[0] == "step 3 failed" and lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'missing'" and err.level == "error"


@pytest.mark.parametrize("append_nul", [True, False])
def test_syslog_handler_udp(append_nul: bool) -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        handler = logging.handlers.SysLogHandler(("127.0.0.1", listener.address[1]))
        handler.append_nul = append_nul
        handler.setFormatter(logging.Formatter("myapp: %(message)s"))
        run_logger("x", handler, ("error", "disk full"))
        [msg] = sink.wait_for(Message)
    assert msg.dialect == "rfc3164" and msg.level == "error" and msg.logger == "myapp"
    assert not msg.data.endswith(b"\x00")
    assert msg.syslog is not None and msg.syslog["message"] == "disk full"


def send_with_logger(port: int, args: list[str]) -> None:
    """util-linux logger to 127.0.0.1:port with *args* (-d, -T, --rfc..., -t, message)."""
    cmd = [peer("logger"), "-n", "127.0.0.1", "-P", str(port), *args]
    subprocess.run(cmd, check=True, timeout=10)


@pytest.mark.parametrize(
    ("flags", "dialect"), [(["--rfc3164"], "rfc3164"), (["--rfc5424"], "rfc5424")]
)
def test_util_linux_logger(flags: list[str], dialect: str) -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        args = ["-d", *flags, "-t", "mytag", "-p", "user.warning", "hello from logger"]
        send_with_logger(listener.address[1], args)
        [msg] = sink.wait_for(Message)
    assert (msg.dialect, msg.level, msg.logger) == (dialect, "warning", "mytag")
    assert msg.syslog is not None and msg.syslog["message"] == "hello from logger"


# --------------------------------------------------------------------------
# GELF, written from the spec (https://go2docs.graylog.org/current/getting_in_log_data/gelf.html)


def gelf_send(address: tuple[str, int], obj: dict[str, Any], how: str, chunk: int = 0) -> None:
    data = json.dumps(obj).encode()
    if how == "zlib":
        data = zlib.compress(data)
    elif how == "gzip":
        data = gzip.compress(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if not chunk:
            s.sendto(data, address)
            return
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        assert len(pieces) <= 128
        msg_id = os.urandom(8)
        for seq, piece in enumerate(pieces):
            s.sendto(b"\x1e\x0f" + msg_id + bytes([seq, len(pieces)]) + piece, address)


@pytest.mark.parametrize(("how", "chunk"), [("plain", 0), ("zlib", 0), ("gzip", 0), ("zlib", 200)])
def test_gelf(how: str, chunk: int) -> None:
    sink = Collector()
    full = "Traceback (most recent call last):\n" + "".join(
        f'  File "x.py", line {i}, in f{i}\n' for i in range(60)
    )
    obj = {
        "version": "1.1",
        "host": "web-1",
        "short_message": "request failed",
        "full_message": full,
        "level": 3,
        "_logger_name": "app.web",
        "_user_id": 42,
    }
    with CreosoteListener(sink, port=0) as listener:
        gelf_send(listener.address, obj, how, chunk)
        [msg] = sink.wait_for(Message)
    assert (msg.dialect, msg.level, msg.logger) == ("gelf", "error", "app.web")
    assert msg.data.decode() == "request failed\n" + full
    assert msg.fields == {"user_id": 42}
    if chunk:
        assert msg.chunks > 1


def test_json_lines_and_the_lecture_spew() -> None:
    def lecture_spew(msg: bytes, host: str, port: int, bufsize: int = 1024) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the lecture's, in Python 3
        while msg:
            s.sendto(msg[:bufsize], (host, port))
            msg = msg[bufsize:]
        s.close()

    sink = Collector()
    text = "".join(f"line {i} of the spew\n" for i in range(300)).encode()
    with CreosoteListener(sink, port=0) as listener:
        host, port = listener.address
        lecture_spew(text, host, port)
        lecture_spew(b"short one", host, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(
                b'{"level": "warning", "logger": "job", "message": "50% done"}\n', (host, port)
            )
        msgs = sink.wait_for(Message, 3)
    by_dialect = {m.dialect: m for m in msgs}
    assert by_dialect["spew"].data == text and by_dialect["spew"].chunks == -(-len(text) // 1024)
    assert by_dialect["text"].data == b"short one"
    assert (by_dialect["json"].level, by_dialect["json"].logger) == ("warning", "job")


def test_raw_shows_each_piece() -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0, raw=True) as listener:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for piece in (b"a" * 1024, b"b" * 1024, b"c"):
                s.sendto(piece, listener.address)
        msgs = sink.wait_for(Message, 3)
    assert [m.data[:1] for m in msgs] == [b"a", b"b", b"c"]


# --------------------------------------------------------------------------
# hostile corpus against the real listener process


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def framed(payload: bytes) -> bytes:
    return struct.pack(">L", len(payload)) + payload


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_hostile_corpus_is_refused_and_the_listener_keeps_serving(tmp_path: Path) -> None:
    import datetime

    marker = tmp_path / "pwned"
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    good = logging.handlers.DatagramHandler("127.0.0.1", 9)
    record = logging.LogRecord("app", logging.INFO, "x.py", 1, "y" * 60000, None, None)
    big_pickle = good.makePickle(record)
    good.close()
    corpus = [
        framed(pickle.dumps({"msg": "hi", "x": Evil(marker)})),
        framed(pickle.dumps({"msg": "t", "when": datetime.datetime(2020, 1, 1)})),
        framed(pickle.dumps({"msg": "d", "x": deep})),
        big_pickle[:-10],  # truncated: its length no longer matches: shown as text
        framed(big_pickle[4:-10]),  # a frame of a cut pickle
        b"\x1e\x0f" + b"\0" * 8 + bytes([200, 255]),  # bad chunk header
        zlib.compress(b"{" + b" " * (2 << 20)),  # decompression bomb
        b"[creosote 0badcafe 00001/99999] x",  # claims 99,999 chunks
    ]
    bomb = [b"\x1e\x0f" + n.to_bytes(8, "big") + bytes([0, 128]) + b"z" * 1000 for n in range(300)]
    with Server("creosote", "listen", "--port", "0", "--json", "--incomplete-after", "1") as srv:
        address = (srv.host, srv.port)
        before = rss_kib(srv.proc.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in corpus + bomb:
                s.sendto(datagram, address)
            s.sendto(big_pickle, address)  # a genuine 60 kB record still gets through
            s.sendto(b'{"level": "info", "message": "still here"}', address)
        events: list[dict[str, Any]] = []
        while not any(e.get("text") == "still here" for e in events):
            events.append(srv.next_event(timeout=10))
        after = rss_kib(srv.proc.pid)
        code, out, err = srv.stop()
    assert code == 0, err
    events += [json.loads(line) for line in out.splitlines()]
    assert not marker.exists()
    refused = [e for e in events if e["event"] == "refused"]
    assert refused and refused[0]["dialect"] == "pickle" and "posix.system" in refused[0]["reason"]
    messages = [e for e in events if e["event"] == "message"]
    assert any(e["dialect"] == "pickle" and len(e["text"]) == 60000 for e in messages)
    incomplete = [e for e in events if e["event"] == "incomplete"]
    assert all(len(json.dumps(e)) < 200_000 for e in incomplete)
    claim = [e for e in incomplete if e["total"] == 99_999]
    assert (
        claim
        and claim[0]["missing_count"] == 99_998
        and claim[0]["missing_ranges"] == [[2, 99_999]]
    )
    summary = json.loads(out.splitlines()[-1]) if out else {}
    assert summary.get("event") == "summary" and summary["counts"]["refused"] >= 4
    assert after - before < 64 * 1024, (before, after)  # KiB: the bomb is bounded


# --------------------------------------------------------------------------
# CreosoteHandler never hurts the program


def test_handler_with_an_unresolvable_host_and_no_listener() -> None:
    from netkit.creosote import CreosoteHandler

    for handler in (CreosoteHandler("nosuch.invalid", 7739), CreosoteHandler("127.0.0.1", 9)):
        log = logging.getLogger(f"netkit-test-handler-{id(handler)}")
        log.propagate = False
        log.addHandler(handler)
        try:
            for i in range(2000):
                log.error("nobody hears %d", i)  # returns: no exception
        finally:
            log.removeHandler(handler)
            handler.close()
        assert handler.dropped > 0 and handler.dropped + handler.sent == 2000


def test_handler_drop_count_arrives_with_the_next_record() -> None:
    from netkit.creosote import CreosoteHandler

    sink = Collector()
    listener = CreosoteListener(sink, port=0)
    listener.start()
    port = listener.address[1]
    listener.stop()  # nothing listens there now
    handler = CreosoteHandler("127.0.0.1", port)
    log = logging.getLogger("netkit-test-handler-drops")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(50):
            log.warning("lost %d", i)
        handler.flush(10)
        assert handler.dropped > 0
        with CreosoteListener(sink, port=port) as again:
            assert again.address[1] == port
            delivered = 0
            for i in range(100):  # bounded: until a record arrives that reports the loss
                log.warning("after %d", i)
                got = sink.wait_for(Message, delivered + 1)
                delivered = len(got)
                if any((m.fields or {}).get("dropped") for m in got):
                    break
            reports = [(m.fields or {}).get("dropped", 0) for m in sink.of(Message)]
    finally:
        log.removeHandler(handler)
        handler.close()
    assert max(reports) >= 1 and max(reports) <= handler.dropped


def test_handler_resolves_lazily_in_a_subprocess() -> None:
    code = (
        "import logging; from netkit.creosote import CreosoteHandler\n"
        "h = CreosoteHandler('nosuch.invalid', 7739)\n"
        "logging.getLogger().addHandler(h)\n"
        "logging.getLogger().error('x')\n"
        "print('returned')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, env=env())
    assert res.returncode == 0 and res.stdout == b"returned\n"
    assert res.stderr == b""  # nothing at interpreter exit either


# --------------------------------------------------------------------------
# spew reading stdin


def test_spew_lines_streams_through_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        proc = subprocess.Popen(
            [
                NETKIT,
                "creosote",
                "spew",
                "--lines",
                "--level",
                "warning",
                "--logger",
                "tail",
                "-p",
                str(listener.address[1]),
            ],
            stdin=(reader := _blocking_reader(fifo)),
            stderr=subprocess.PIPE,
            env=env(),
        )
        os.close(reader)
        try:
            with open(fifo, "wb", buffering=0) as writer:
                for i in range(5):
                    writer.write(b"line %d\n" % i)
                    [*_, msg] = sink.wait_for(Message, i + 1)  # before the writer closes
                    assert msg.data == b"line %d" % i
                    assert (msg.level, msg.logger) == ("warning", "tail")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            _out, err = proc.communicate(timeout=5)
    assert b"sent 5 messages" in err


def _blocking_reader(fifo: Path) -> int:
    """The FIFO's read end, opened without waiting for a writer, then made blocking."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return fd


def test_spew_stdin_memory_is_bounded_on_yes() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink_sock:  # never read
        sink_sock.bind(("127.0.0.1", 0))
        port = sink_sock.getsockname()[1]
        yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
        assert yes.stdout is not None
        proc = subprocess.Popen(
            [NETKIT, "creosote", "spew", "-p", str(port), "--chunk-size", "65000"],
            stdin=yes.stdout,
            stderr=subprocess.PIPE,
            env=env(),
        )
        yes.stdout.close()
        try:
            done = threading.Event()
            peak = 0
            for _ in range(30):  # 3 s of `yes`, sampled every 0.1 s
                if done.wait(0.1) or proc.poll() is not None:
                    break
                peak = max(peak, rss_kib(proc.pid))
            assert proc.poll() is None  # still streaming
        finally:
            proc.kill()
            yes.kill()
            proc.communicate(timeout=5)
            yes.wait(timeout=5)
    assert 0 < peak < 100 * 1024, peak  # KiB


def test_spew_lines_refused_is_counted_and_exit_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = subprocess.run(
        [NETKIT, "creosote", "spew", "--lines", "-p", str(port), "-t", "2"],
        input=b"a\nb\nc\n",
        capture_output=True,
        timeout=20,
        env=env(),
    )
    assert res.returncode == 1 and b"Traceback" not in res.stderr
    assert b"were refused: nothing listens" in res.stderr


def test_a_flood_of_huge_claims_is_cheap_and_fully_accounted_at_stop(tmp_path: Path) -> None:
    """Issue 14 item 10: 2,000 datagrams of 33 bytes claiming 99,999 chunks each."""
    log = tmp_path / "debug.log"
    n = 2000
    argv = ["creosote", "listen", "--port", "0", "--json", "--logfile", str(log)]
    with Server(*argv) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(n):
                s.sendto(b"[creosote %08x 00001/99999] x" % i, (srv.host, srv.port))
            s.sendto(b"marker", (srv.host, srv.port))
        events: list[dict[str, Any]] = []
        while not any(e.get("text") == "marker" for e in events):
            events.append(srv.next_event(timeout=20))
        code, out, err = srv.stop(timeout=30)
    assert code == 0, err
    events += [json.loads(line) for line in out.splitlines()]
    incomplete = [e for e in events if e["event"] == "incomplete"]
    assert len(incomplete) == n  # evicted for room, or given up at the stop: every one
    assert sum(len(json.dumps(e)) for e in incomplete) < n * 1500  # not 689 KB each
    summary = events[-1]
    assert summary["event"] == "summary"
    assert summary["counts"]["incomplete"] == n and summary["counts"]["messages"] == 1
    assert summary["counts"]["logged"] == n + 1  # the log holds every one, closed last
    assert len(log.read_bytes().splitlines()) == n + 1

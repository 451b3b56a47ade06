"""creosote listen --tcp: SocketHandler, syslog over TCP (both framings), JSON lines, limits."""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
import threading
from pathlib import Path

import pytest

from netkit.events import Listening
from netkit.events.creosote import Message, RecordRefused
from netkit.services.creosote import CreosoteListener
from tests.helpers import Server
from tests.interop.test_creosote_emitters import run_logger, send_with_logger
from tests.sink import Collector


def tcp_listener(sink: Collector, **kw: object) -> CreosoteListener:
    return CreosoteListener(sink, port=0, udp=False, tcp=True, **kw)  # type: ignore[arg-type]


def test_socket_handler_pickles_over_tcp() -> None:
    sink = Collector()
    with tcp_listener(sink) as listener:
        handler = logging.handlers.SocketHandler("127.0.0.1", listener.address[1])
        big = "x" * 65536
        calls = [("info", "hello"), ("exception", "step 3 failed"), ("warning", big)]
        run_logger("app.tcp", handler, *calls)
        hello, err, large = sink.wait_for(Message, 3)
    assert (hello.dialect, hello.level, hello.logger, hello.data) == (
        "pickle",
        "info",
        "app.tcp",
        b"hello",
    )
    assert err.data.decode().splitlines()[-1] == "KeyError: 'missing'"
    assert large.data == big.encode()  # a 64 KiB record, whole


@pytest.mark.parametrize("append_nul", [True, False])
def test_syslog_handler_over_tcp(append_nul: bool) -> None:
    sink = Collector()
    with tcp_listener(sink) as listener:
        handler = logging.handlers.SysLogHandler(
            ("127.0.0.1", listener.address[1]), socktype=socket.SOCK_STREAM
        )
        handler.append_nul = append_nul
        handler.setFormatter(logging.Formatter("myapp: %(message)s"))
        run_logger("x", handler, ("error", "one"), ("warning", "two"))
        one, two = sink.wait_for(Message, 2)
    assert (one.dialect, one.level, one.logger) == ("rfc3164", "error", "myapp")
    assert one.syslog is not None and one.syslog["message"] == "one"
    assert two.syslog is not None and two.syslog["message"] == "two"


@pytest.mark.parametrize("flags", [["--octet-count"], []])
def test_util_linux_logger_over_tcp(flags: list[str]) -> None:
    sink = Collector()
    with tcp_listener(sink) as listener:
        for args in (["--rfc5424", "-p", "local0.err", "first"], ["--rfc3164", "second"]):
            send_with_logger(listener.address[1], ["-T", *flags, "-t", "mytag", *args])
        first, second = sink.wait_for(Message, 2)
    assert (first.dialect, first.level, first.logger) == ("rfc5424", "error", "mytag")
    assert first.syslog is not None and first.syslog["message"] == "first"
    assert second.dialect == "rfc3164" and second.syslog is not None
    assert second.syslog["message"] == "second"


def test_json_lines_and_an_unterminated_last_line() -> None:
    sink = Collector()
    with tcp_listener(sink) as listener:
        with socket.create_connection(listener.address, timeout=5) as s:
            s.sendall(b'{"level": "error", "logger": "job", "message": "a"}\r\nplain b\nlast c')
        msgs = sink.wait_for(Message, 3)
    assert [(m.dialect, m.data) for m in msgs] == [
        ("json", b"a"),
        ("text", b"plain b"),
        ("text", b"last c"),
    ]


def test_limits_close_connections_and_the_listener_keeps_serving() -> None:
    sink = Collector()
    with tcp_listener(sink, max_clients=2, max_record=1000, idle_timeout=0.5) as listener:
        address = listener.address
        a = socket.create_connection(address, timeout=5)
        b = socket.create_connection(address, timeout=5)
        a.sendall(b"a is here\n")
        b.sendall(b"b is here\n")
        sink.wait_for(Message, 2)  # both accepted and served
        c = socket.create_connection(address, timeout=5)
        assert c.recv(1) == b""  # the third is closed at once
        c.close()
        # idle: a and b are closed after 0.5 s of silence
        assert a.recv(1) == b"" and b.recv(1) == b""
        a.close()
        b.close()
        for hostile in (b"1000000000000 <14>1 - - - - - x", b"y" * 2000, b"\x00\x10\x00\x00abc"):
            with socket.create_connection(address, timeout=5) as h:
                h.sendall(hostile)
                assert h.recv(1) == b""  # refused and closed
        with socket.create_connection(address, timeout=5) as ok:
            ok.sendall(b"still serving\n")
            sink.wait_for(Message, 3)
        refused = sink.wait_for(RecordRefused)
    assert "octet count of more than 10 digits" in refused[0].reason
    assert listener.counts["tcp_rejected"] == 1 and listener.counts["idle_timeouts"] >= 2
    assert listener.counts["tcp_bad_frames"] == 3


def test_udp_and_tcp_on_one_port_and_records_never_torn(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    sink = Collector()
    n_clients, n_records = 8, 200
    with CreosoteListener(sink, port=0, udp=True, tcp=True, logfile=str(log), quiet=True) as lst:
        udp, tcp = sink.wait_for(Listening, 2)
        assert (udp.transport, tcp.transport, udp.port) == ("udp", "tcp", tcp.port)

        def client(k: int) -> None:
            with socket.create_connection(lst.address, timeout=10) as s:
                for i in range(n_records):
                    rec = {"logger": f"c{k}", "message": f"{k}-{i} " + "z" * 3000}
                    s.sendall(json.dumps(rec).encode() + b"\n")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
        for t in threads:
            t.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"over udp", lst.address)
        for t in threads:
            t.join(30)
        total = n_clients * n_records + 1
        deadline = threading.Event()
        for _ in range(300):  # bounded: until every record is counted (0.1 s steps)
            if lst.counts["messages"] >= total:
                break
            deadline.wait(0.1)
    lines = log.read_text().splitlines()
    assert len(lines) == total
    body = [line.split(" ", 2)[2] for line in lines]
    assert sorted(b for b in body if b != "over udp") == sorted(
        f"{k}-{i} " + "z" * 3000 for k in range(n_clients) for i in range(n_records)
    )


def test_tcp_from_the_command_line() -> None:
    with Server("creosote", "listen", "--port", "0", "--tcp", "--json") as srv:
        assert srv.listening["transport"] == "tcp"
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            s.sendall(b'{"level": "warning", "message": "over tcp"}\n')
        ev = srv.next_event()
        assert (ev["event"], ev["dialect"], ev["level"], ev["text"]) == (
            "message",
            "json",
            "warning",
            "over tcp",
        )
        code, out, err = srv.stop()
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["event"] == "summary" and summary["counts"]["tcp_connections"] == 1

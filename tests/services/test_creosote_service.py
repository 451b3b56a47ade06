"""Creosote listener, spew and CreosoteHandler on port 0 through the service API."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from netkit.events import Listening
from netkit.events.creosote import IncompleteMessage, Message
from netkit.net import NetError
from netkit.protocols import creosote
from netkit.services.creosote import CreosoteListener, spew
from tests.sink import Collector


def send(port: int, *datagrams: bytes, host: str = "127.0.0.1") -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (host, port))


def test_plain_and_chunked_messages() -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        port = listener.address[1]
        send(port, b"plain \xff text")
        text = ("é€😀 " * 400).encode()
        result = spew(text, port=port, chunk_size=100)
        assert result.chunks > 1 and result.bytes == len(text)
        msgs = sink.wait_for(Message, 2)
    assert isinstance(sink.events[0], Listening)
    assert (msgs[0].data, msgs[0].chunks, msgs[0].syslog) == (b"plain \xff text", 1, None)
    assert (msgs[1].data, msgs[1].chunks, msgs[1].bytes) == (text, result.chunks, len(text))
    assert listener.counts["messages"] == 2 and listener.counts["chunked"] == 1


def test_largest_datagram_is_not_truncated() -> None:
    sink = Collector()
    big = (bytes(range(256)) * 256)[:65_507]
    with CreosoteListener(sink, port=0) as listener:
        send(listener.address[1], big)
        [m] = sink.wait_for(Message)
    assert m.bytes == 65_507 and m.data == big


def test_incomplete_message_is_reported() -> None:
    sink = Collector()
    dgrams = creosote.split(b"x" * 300, 132, "0badcafe")
    assert len(dgrams) == 3
    with CreosoteListener(sink, port=0, incomplete_timeout=0.3) as listener:
        send(listener.address[1], dgrams[0], dgrams[2])
        [inc] = sink.wait_for(IncompleteMessage)
    assert (inc.received, inc.total, inc.missing, inc.reason) == (2, 3, [2], "timeout")
    assert inc.data == b"x" * 200 and inc.id == "0badcafe"
    assert not sink.of(Message)


def test_pending_chunks_are_reported_on_stop() -> None:
    sink = Collector()
    dgrams = creosote.split(b"y" * 300, 132, "00000001")
    with CreosoteListener(sink, port=0, incomplete_timeout=60) as listener:
        send(listener.address[1], dgrams[1], b"after")
        sink.wait_for(Message)
    [inc] = sink.of(IncompleteMessage)
    assert (inc.received, inc.missing, inc.reason) == (1, [1, 3], "stopped")


def test_syslog_datagram() -> None:
    sink = Collector()
    with CreosoteListener(sink, port=0) as listener:
        send(listener.address[1], b"<131>Nov 25 18:49:08 vm app2[7]: disk on fire")
        [m] = sink.wait_for(Message)
    assert m.syslog is not None
    assert {k: m.syslog[k] for k in ("format", "facility", "severity", "host", "app")} == {
        "format": "rfc3164",
        "facility": "local0",
        "severity": "err",
        "host": "vm",
        "app": "app2",
    }
    assert listener.counts["syslog"] == 1


def test_count_and_ipv6() -> None:
    sink = Collector()
    with CreosoteListener(sink, host="::1", port=0, count=2) as listener:
        send(listener.address[1], b"a", b"b", host="::1")
        assert listener.wait(5)
    assert [m.data for m in sink.of(Message)] == [b"a", b"b"]
    assert sink.of(Message)[0].peer.startswith("[::1]:")


def test_logfile_one_line_per_message(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    log.write_text("earlier line\n")
    sink = Collector()
    with CreosoteListener(sink, port=0, logfile=str(log), quiet=True) as listener:
        send(listener.address[1], b"one", b"two\nlines \x1b[31m", b"<13>1 - h app - - - hi")
        dgrams = creosote.split(b"z" * 300, 132, "0000000a")
        send(listener.address[1], dgrams[0])
        for _ in range(50):  # bounded: until the three datagrams are in
            if listener.counts["messages"] >= 3:
                break
            listener.wait(0.1)
    assert not sink.of(Message)  # quiet: nothing on stdout
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert [ln.split(" ", 2)[2] for ln in lines[1:]] == [
        "one",
        "two\\nlines \\x1b[31m",
        "<13>1 - h app - - - hi",
        "[incomplete 1/3 chunks, stopped] " + "z" * 100,
    ]
    assert listener.counts["logged"] == 4


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_logfile_refuses_special_paths(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "log"
    if kind == "symlink":
        path.symlink_to(tmp_path / "target")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    listener = CreosoteListener(Collector(), port=0, logfile=str(path))
    with pytest.raises(
        NetError, match=f"(?i)is a {'symbolic link' if kind == 'symlink' else kind}"
    ):
        listener.start()
    assert not (tmp_path / "target").exists()


def test_spew_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetError, match="no listener"):
        spew(b"anyone?", port=port, wait=5)


def test_spew_chunk_size_too_small() -> None:
    with pytest.raises(ValueError, match="too small"):
        spew("😀".encode() * 100, port=9, chunk_size=35)


def test_logging_handler_sends_records() -> None:
    from netkit.creosote import CreosoteHandler

    sink = Collector()
    logger = logging.getLogger("netkit-test-creosote")
    logger.propagate = False
    with CreosoteListener(sink, port=0) as listener:
        handler = CreosoteHandler("127.0.0.1", listener.address[1])
        logger.addHandler(handler)
        try:
            logger.warning("step %d reached", 3)
            try:
                raise RuntimeError("boom " * 300)
            except RuntimeError:
                logger.exception("failed")
            msgs = sink.wait_for(Message, 2)
        finally:
            logger.removeHandler(handler)
            handler.close()
    assert msgs[0].data == b"step 3 reached" and msgs[0].dialect == "json"
    assert (msgs[0].level, msgs[0].logger) == ("warning", "netkit-test-creosote")
    assert msgs[1].chunks > 1  # a long traceback: chunked and put back together
    assert msgs[1].data.startswith(b"failed\nTraceback") and msgs[1].level == "error"
    assert msgs[1].data.rstrip().endswith(b"boom")
    assert msgs[1].fields is not None and "RuntimeError" in msgs[1].fields["exc_text"]


def test_logging_handler_never_blocks_without_listener() -> None:
    from netkit.creosote import CreosoteHandler

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = CreosoteHandler("127.0.0.1", port)
    logger = logging.getLogger("netkit-test-creosote-void")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(2000):  # returns every time: no exception, no hang (per-test timeout)
            logger.error("nobody hears %d %s", i, "x" * 3000)
    finally:
        logger.removeHandler(handler)
        handler.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_an_address_of_this_host_is_not_waited_for(host: str) -> None:
    """The kernel refuses a datagram to a closed port of this host during the send call,
    so spew looks for the refusal without waiting (refusal_wait 0), and still sees it."""
    from netkit.clients.creosote import refusal_wait

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        assert refusal_wait(s, 5.0) == 0.0
    with pytest.raises(NetError, match="ICMP port unreachable"):
        spew(b"anyone?", host=host, port=port, wait=30)

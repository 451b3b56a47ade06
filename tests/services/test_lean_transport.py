"""The lean transport of ``--mode async --loop asyncio``, alone, on a real loop and real sockets.

What asyncio's own socket transport does, it must do too: EOF, a reset, a
client that does not read (the protocol is paused, reading stops, nothing
is lost), ``close`` sending what is buffered, ``abort`` not, ``write_eof``
after the buffer drains.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from netkit.services.modes.lean_transport import HIGH_WATER, LeanTransport

BIG = 32 * 1024 * 1024  # past both kernel buffers on loopback


class Recorder(asyncio.Protocol):
    """Upper-cases what comes; records what the transport tells it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[str] = []
        self.received = 0
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.paused: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.keep_open_on_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.calls.append("made")

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.transport.write(data.upper())  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        self.calls.append("eof")
        self.eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.calls.append("pause")
        self.transport.pause_reading()  # type: ignore[attr-defined]
        if not self.paused.done():
            self.paused.set_result(None)

    def resume_writing(self) -> None:
        self.calls.append("resume")
        self.transport.resume_reading()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        self.lost.set_result(exc)


@contextmanager
def pair() -> Iterator[tuple[asyncio.AbstractEventLoop, LeanTransport, Recorder, socket.socket]]:
    """A loop, the server end of a loopback connection on a LeanTransport, the client end."""
    loop = asyncio.new_event_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=10)
        conn, peer = listener.accept()
    conn.setblocking(False)
    protocol = Recorder(loop)
    transport = LeanTransport(loop, conn, protocol)
    transport.peer = peer
    try:
        transport.start()
        yield loop, transport, protocol, client
    finally:
        client.close()
        if not protocol.lost.done():
            transport.abort()
            run(loop, protocol.lost)
        loop.close()


def run(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], timeout: float = 10) -> Any:
    return loop.run_until_complete(asyncio.wait_for(future, timeout))


def in_thread(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> asyncio.Future[Any]:
    return loop.run_in_executor(None, fn)


def read_n(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(1 << 20, n - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_bytes_come_back_and_eof_closes() -> None:
    with pair() as (loop, transport, protocol, client):
        assert transport.get_extra_info("peername") == client.getsockname()
        client.sendall(b"hello\n")
        assert run(loop, in_thread(loop, lambda: read_n(client, 6))) == b"HELLO\n"
        client.shutdown(socket.SHUT_WR)
        assert run(loop, protocol.lost) is None
        assert protocol.calls == ["made", "eof", "lost"]
        assert client.recv(10) == b""


def test_a_reset_is_connection_lost_with_the_error() -> None:
    with pair() as (loop, _transport, protocol, client):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.sendall(b"x\n")  # unread on our side: the close below is a reset
        client.close()
        exc = run(loop, protocol.lost)
        assert isinstance(exc, ConnectionResetError)


def test_a_client_that_does_not_read_pauses_the_protocol_and_loses_nothing() -> None:
    with pair() as (loop, transport, protocol, client):
        data = bytes(range(97, 123)) * (BIG // 26)
        sender = threading.Thread(target=client.sendall, args=(data,))
        sender.start()
        try:
            run(loop, protocol.paused)
            assert transport.get_write_buffer_size() > HIGH_WATER
            assert not transport.is_reading()  # the protocol paused reading
            reader = in_thread(loop, lambda: read_n(client, len(data)))
            assert run(loop, reader, timeout=60) == data.upper()
        finally:
            sender.join(60)
        assert not sender.is_alive()
        assert protocol.received == len(data)
        assert "resume" in protocol.calls
        assert transport.is_reading()


def test_close_sends_what_is_buffered_first() -> None:
    with pair() as (loop, transport, protocol, client):
        transport.write(b"b" * BIG)  # more than the socket takes at once
        assert transport.get_write_buffer_size() > 0
        transport.close()
        transport.write(b"dropped")
        got = run(loop, in_thread(loop, lambda: read_n(client, BIG + 10)), timeout=60)
        assert got == b"b" * BIG  # all of it, then EOF
        assert run(loop, protocol.lost) is None


def test_abort_drops_what_is_buffered() -> None:
    with pair() as (loop, transport, protocol, client):
        transport.write(b"b" * BIG)
        buffered = transport.get_write_buffer_size()
        assert buffered > 0
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        assert run(loop, protocol.lost) is None
        got = run(loop, in_thread(loop, lambda: read_n(client, BIG)), timeout=60)
        assert len(got) == BIG - buffered  # what the kernel had, then EOF


def test_write_eof_waits_for_the_buffer_and_reading_goes_on() -> None:
    with pair() as (loop, transport, protocol, client):
        transport.write(b"b" * BIG)
        assert transport.get_write_buffer_size() > 0
        transport.write_eof()
        transport.write(b"dropped")  # after write_eof: not sent (asyncio refuses it)
        got = run(loop, in_thread(loop, lambda: read_n(client, BIG + 10)), timeout=60)
        assert got == b"b" * BIG  # all of it, then EOF
        client.sendall(b"still read\n")  # the other direction is open
        client.shutdown(socket.SHUT_WR)
        assert run(loop, protocol.eof) is None
        assert run(loop, protocol.lost) is None
        assert protocol.received == len(b"still read\n")


@pytest.mark.parametrize("late", [False, True])
def test_writes_after_close_are_dropped(late: bool) -> None:
    with pair() as (loop, transport, protocol, client):
        transport.close()
        if late:
            run(loop, protocol.lost)
        transport.write(b"never sent")
        run(loop, protocol.lost)
        assert client.recv(100) == b""
        assert transport.is_closing()


def test_a_protocol_that_raises_is_reported_and_its_connection_closed() -> None:
    with pair() as (loop, transport, protocol, client):
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: seen.append(context))

        def broken(data: bytes) -> None:
            raise ValueError(data)

        transport.data_received = broken
        client.sendall(b"boom\n")
        exc = run(loop, protocol.lost)
        assert isinstance(exc, ValueError) and exc.args == (b"boom\n",)
        assert [c["message"] for c in seen] == ["data_received() failed"]
        assert seen[0]["exception"] is exc
        assert client.recv(10) == b""

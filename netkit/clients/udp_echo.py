"""udp-echo send: a client of an echo server, with timeout and retries."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from netkit.events import Sink
from netkit.events.udp_echo import Reply
from netkit.net import (
    UDP_MAX_PAYLOAD,
    NetError,
    connect_socket,
    describe_error,
    format_host,
    format_peer,
)
from netkit.protocols import echo


def _expected(message: bytes) -> tuple[bytes, bytes]:
    return message, echo.reply(message, upper=True)


def send_messages(
    sink: Sink,
    messages: Iterable[bytes],
    *,
    host: str = "127.0.0.1",
    port: int = 11111,
    version: int | None = None,
    timeout: float = 2.0,
    retries: int = 0,
) -> int:
    """Send each message to an echo server and emit a :class:`Reply` for its answer.

    A connected UDP socket: the kernel drops datagrams from any other
    address, and an ICMP port unreachable comes back as ECONNREFUSED on the
    next receive, long before the timeout.  Raises :class:`NetError` when a
    message gets no reply after ``1 + retries`` tries.  Returns how many
    replies came.
    """
    where = f"{format_host(host)}:{port}"
    sock = connect_socket(host, port, socktype=socket.SOCK_DGRAM, version=version, timeout=timeout)
    peer = format_peer(sock.getpeername())
    earlier: set[bytes] = set()  # replies to earlier messages that may still arrive late
    replies = 0
    try:
        for message in messages:
            expected = _expected(message)
            got = _exchange(sock, message, expected, earlier, timeout, retries, where)
            reply, rtt, tries = got
            replies += 1
            sink(
                Reply(
                    peer=peer, size=len(reply), data=reply, rtt_ms=round(rtt * 1000, 3), tries=tries
                )
            )
            earlier.update(expected)
    finally:
        sock.close()
    return replies


def _exchange(
    sock: socket.socket,
    message: bytes,
    expected: tuple[bytes, bytes],
    earlier: set[bytes],
    timeout: float,
    retries: int,
    where: str,
) -> tuple[bytes, float, int]:
    tries = 1 + retries
    for attempt in range(1, tries + 1):
        sent_at = time.monotonic()
        try:
            sock.send(message)
        except ConnectionRefusedError:
            raise NetError(_refused(where)) from None
        except OSError as exc:
            raise NetError(describe_error(exc, f"cannot send to {where}")) from exc
        deadline = sent_at + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                reply = sock.recv(UDP_MAX_PAYLOAD)
            except TimeoutError:
                break
            except ConnectionRefusedError:
                raise NetError(_refused(where)) from None
            except OSError as exc:
                raise NetError(describe_error(exc, f"cannot receive from {where}")) from exc
            if reply in earlier and reply not in expected:
                continue  # a late reply to an earlier message
            return reply, time.monotonic() - sent_at, attempt
    what = "try" if tries == 1 else "tries"
    raise NetError(
        f"no reply from {where} within {timeout:g} s ({tries} {what}); is an echo server "
        "listening there? (try --timeout or --retries)"
    )


def _refused(where: str) -> str:
    return (
        f"no server listening on {where}: the host answered ICMP port unreachable "
        "(connection refused)"
    )


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Messages from a binary stream, one per line (the newline removed)."""
    while True:
        line = stream.readline(UDP_MAX_PAYLOAD + 2)
        if not line:
            return
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield line


def encode_arg(arg: str) -> bytes:
    """A command-line argument as the bytes the user typed (undecodable bytes kept)."""
    return os.fsencode(arg)

"""udp-echo send: a client of an echo server, with timeout and retries."""

from __future__ import annotations

import errno
import functools
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from netkit.events import Notice, Sink
from netkit.events.udp_echo import Reply
from netkit.net import (
    UDP_MAX_PAYLOAD,
    DatagramPeer,
    NetError,
    NoAnswer,
    describe_error,
    format_peer,
    seconds,
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
    next receive, long before the timeout.  Until an address of *host* has
    answered, a refused or unanswered one hands over to the next
    (:class:`netkit.net.DatagramPeer`).  Raises :class:`NetError` when a
    message gets no reply after ``1 + retries`` tries.  Returns how many
    replies came.
    """
    earlier: set[bytes] = set()  # replies to earlier messages that may still arrive late
    replies = 0

    def note(message: str) -> None:
        sink(Notice("note", message))

    # one deadline for the lookup, every address of the name and the first reply
    # (with its retries); each later message gets timeout per try again
    deadline = time.monotonic() + timeout * (1 + retries)
    with DatagramPeer(
        host, port, version=version, timeout=timeout, on_note=note, deadline=deadline
    ) as peer:
        for message in messages:
            expected = _expected(message)

            attempt = functools.partial(
                _exchange,
                message=message,
                expected=expected,
                earlier=earlier,
                wait=peer.wait,
                retries=retries,
                note=note,
            )
            reply, rtt, tries = peer.exchange(attempt)
            replies += 1
            sink(
                Reply(
                    peer=peer.peer,
                    size=len(reply),
                    data=reply,
                    rtt_ms=round(rtt * 1000, 3),
                    tries=tries,
                    sent_wire=message,
                )
            )
            earlier.update(expected)
    return replies


def _exchange(
    sock: socket.socket,
    message: bytes,
    expected: tuple[bytes, bytes],
    earlier: set[bytes],
    wait: Callable[[int], float | None],
    retries: int,
    note: Callable[[str], None],
) -> tuple[bytes, float, int]:
    where = format_peer(sock.getpeername())
    tries = 1 + retries
    waited = 0.0
    for attempt in range(1, tries + 1):
        timeout = wait(tries - attempt + 1) or 0.0
        if attempt > 1:
            note(f"no reply from {where} within {seconds(waited)} s, try {attempt}/{tries}")
        waited = timeout
        sent_at = time.monotonic()
        try:
            sock.send(message)
        except ConnectionRefusedError:
            raise _refused(where) from None
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise NetError(describe_error(exc, f"cannot send to {where}")) from exc
            raise NoAnswer.from_error(exc, f"cannot send to {where}") from exc
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
                raise _refused(where) from None
            except OSError as exc:
                raise NoAnswer.from_error(exc, f"cannot receive from {where}") from exc
            if reply in earlier and reply not in expected:
                continue  # a late reply to an earlier message
            return reply, time.monotonic() - sent_at, attempt
    what = "try" if tries == 1 else "tries"
    raise NoAnswer(
        f"no reply from {where} within {seconds(waited)} s ({tries} {what}); is an echo server "
        "listening there? (try --timeout or --retries)",
        f"no reply within {seconds(waited)} s",
    )


def _refused(where: str) -> NoAnswer:
    return NoAnswer(
        f"no server listening on {where}: the host answered ICMP port unreachable "
        "(connection refused)",
        "connection refused",
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

"""udp-echo: the lecture's upper-casing UDP server (or RFC 862 echo) and its client.

The server reads with ``recvfrom_into`` into one preallocated buffer the
size of the largest datagram and answers with ``sendto``; with ``quiet``
it builds no event per datagram, which is what makes it fast.  It never
answers a privileged source port or its own address (see
:class:`netkit.protocols.echo.EchoPolicy`) and can limit each source's rate.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from netkit.events import Datagram, Listening, Notice, Reply, Sink
from netkit.net import (
    UDP_MAX_PAYLOAD,
    NetError,
    bind_socket,
    bound_address,
    connect_socket,
    describe_error,
    format_host,
    format_peer,
)
from netkit.protocols import echo
from netkit.protocols.ratelimit import RateLimiter, ReportLimit
from netkit.services.core import Server
from netkit.services.loops import BatchedEchoReader, DatagramReader, Loop

DROP_LOG_INTERVAL = 1.0  # at most one log line (event) for dropped datagrams per interval


class UdpEchoServer(Server):
    """Reply to each datagram, upper-cased (``upper=True``, the default) or unchanged."""

    thread_name = "netkit-udp-echo"
    failure_action = "udp-echo stopped"

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 11111,
        version: int | None = None,
        count: int | None = None,
        upper: bool = True,
        quiet: bool = False,
        rate: float | None = None,
    ) -> None:
        super().__init__(sink, count=count)
        self.host = host
        self.port = port
        self.version = version
        self.upper = upper
        self.quiet = quiet
        self.limiter = RateLimiter(rate) if rate else None
        self._sock: socket.socket | None = None
        self._dropped = dict.fromkeys(echo.DROP_REASONS, 0)
        self._received = self._replied = 0
        self._reports = ReportLimit(DROP_LOG_INTERVAL)

    def bind(self) -> tuple[str, int]:
        self._sock = bind_socket(
            self.host, self.port, socktype=socket.SOCK_DGRAM, version=self.version
        )
        return bound_address(self._sock)

    def listening(self, address: tuple[str, int]) -> Listening:
        return Listening(host=address[0], port=address[1], transport="udp")

    def _policy(self, own: tuple[str, int], packed: bool) -> echo.EchoPolicy:
        own_packed = b""
        if packed:
            assert self._sock is not None
            own_packed = socket.inet_pton(self._sock.family, own[0].split("%", 1)[0])
        allow = self.limiter.allow if self.limiter is not None else None
        return echo.EchoPolicy(own, upper=self.upper, own_packed=own_packed, allow=allow)

    def serve(self) -> None:
        sock = self._sock
        assert sock is not None
        loop = Loop(self)
        batched = self.quiet and self.limiter is None and self.count is None
        if batched:
            from netkit.services import _mmsg

            batched = _mmsg.available()
        try:
            if batched:
                self._serve_batched(loop, sock)
            else:
                self._serve_each(loop, sock)
        finally:
            loop.close()

    def _drop(self, reason: str) -> None:
        self._dropped[reason] += 1

    def _serve_batched(self, loop: Loop, sock: socket.socket) -> None:
        """The fast path: no per-datagram event, no rate, no count (see :mod:`._mmsg`)."""
        reader = BatchedEchoReader(loop, sock, self._policy(self._own(), True), self._drop)
        try:
            loop.run()
        except OSError as exc:
            self.fail(describe_error(exc, "receive failed"))
        finally:
            reader.close()
            self._received, self._replied = reader.received, reader.replied
            self.add_counts({"send_errors": reader.send_errors})

    def _own(self) -> tuple[str, int]:
        assert self._sock is not None
        return bound_address(self._sock)

    def _serve_each(self, loop: Loop, sock: socket.socket) -> None:
        answer = self._policy(self._own(), False).answer
        quiet = self.quiet
        count = self.count
        dropped = self._dropped
        monotonic = time.monotonic

        def handle(data: memoryview, addr: tuple[str, int]) -> bytes | None:
            self._received += 1
            reply, reason = answer(addr[0], addr[1], data, monotonic())
            if reply is not None:
                self._replied += 1
                if not quiet:
                    self.emit(Datagram(peer=format_peer(addr), size=len(data), data=bytes(data)))
            else:
                dropped[reason or ""] += 1
                # a flood from a low port (or over --rate) must not become a flood of log
                # lines: one drop event a second, with how many went unlogged since the last
                if not quiet and self._reports.due(monotonic()):
                    self.emit(
                        Datagram(
                            peer=format_peer(addr),
                            size=len(data),
                            data=bytes(data),
                            replied=False,
                            dropped=reason,
                            unlogged_drops=self._reports.take_suppressed(),
                        )
                    )
            if count is not None and self._received >= count:
                self.request_stop()
            return reply

        reader = DatagramReader(loop, sock, handle, bufsize=UDP_MAX_PAYLOAD)
        try:
            loop.run()
        finally:
            reader.close()
            # a reply counted above but refused by the kernel is a send error, not a reply
            self._replied -= reader.send_errors
            self.add_counts(
                {"send_errors": reader.send_errors, "receive_errors": reader.recv_errors}
            )

    def finish(self) -> None:
        with self._counts_lock:
            self.counts["received"] += self._received
            self.counts["replied"] += self._replied
        self.add_counts({f"dropped_{r}": n for r, n in self._dropped.items()})
        if any(self._dropped.values()) and not self.quiet:
            notes = ", ".join(
                f"{n_dropped} ({echo.DROP_REASONS[r]})"
                for r, n_dropped in self._dropped.items()
                if n_dropped
            )
            self.emit(Notice(level="info", message=f"not answered: {notes}"))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


# --------------------------------------------------------------------------
# client


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

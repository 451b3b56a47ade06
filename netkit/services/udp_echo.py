"""udp-echo: the lecture's upper-casing UDP server (or RFC 862 echo) and its client.

The server reads with ``recvfrom_into`` into one preallocated buffer the
size of the largest datagram and answers with ``sendto``; with ``quiet``
it builds no event per datagram, which is what makes it fast.  It never
answers a privileged source port or its own address (see
:func:`netkit.protocols.echo.drop_reason`) and can limit each source's rate.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from netkit.events import Listening, Notice, Sink
from netkit.events.udp_echo import Datagram, Reply
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
from netkit.protocols.ratelimit import RateLimiter
from netkit.services import _mmsg
from netkit.services.base import Service

_CHECK_EVERY = 64  # datagrams between two looks at the stop flag under load
DROP_LOG_INTERVAL = 1.0  # at most one log line (event) for dropped datagrams per interval


class UdpEchoServer(Service):
    """Reply to each datagram, upper-cased (``upper=True``, the default) or unchanged."""

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
        self._thread: threading.Thread | None = None

    def _start(self) -> tuple[str, int]:
        sock = bind_socket(self.host, self.port, socktype=socket.SOCK_DGRAM, version=self.version)
        self._sock = sock
        address = bound_address(sock)
        self.emit(Listening(host=address[0], port=address[1], transport="udp"))
        self._thread = threading.Thread(
            target=self._serve, args=(sock, address), name="netkit-udp-echo", daemon=True
        )
        self._thread.start()
        return address

    def _serve(self, sock: socket.socket, own: tuple[str, int]) -> None:
        try:
            if self.quiet and self.limiter is None and self.count is None and _mmsg.available():
                self._serve_batched(sock, own)
            else:
                self._serve_each(sock, own)
        except Exception as exc:  # e.g. stdout closed under --json: stop, exit 1, no traceback
            self.fail(describe_error(exc, "udp-echo stopped"))

    def _serve_batched(self, sock: socket.socket, own: tuple[str, int]) -> None:
        """The fast path: no per-datagram event, no rate, no count (see :mod:`._mmsg`)."""
        dropped = dict.fromkeys(echo.DROP_REASONS, 0)

        def drop(reason: str) -> None:
            dropped[reason] += 1

        try:
            received, replied, send_errors = _mmsg.serve(
                sock, own, upper=self.upper, stop=self._stop_requested, drop=drop
            )
        except OSError as exc:
            self.fail(describe_error(exc, "receive failed"))
            return
        self._add_counts(received, replied, dropped, send_errors, 0)

    def _serve_each(self, sock: socket.socket, own: tuple[str, int]) -> None:
        buf = bytearray(UDP_MAX_PAYLOAD)
        view = memoryview(buf)
        recv_into = sock.recvfrom_into
        sendto = sock.sendto
        upper = self.upper
        quiet = self.quiet
        limiter = self.limiter
        count = self.count
        stop = self._stop_requested
        own_port = own[1]
        low = echo.LOWEST_REPLY_PORT
        guard = echo.LoopGuard()
        received = replied = send_errors = recv_errors = 0
        dropped = dict.fromkeys(echo.DROP_REASONS, 0)
        since_check = 0
        # a flood from a low port (or over --rate) must not become a flood of log lines:
        # one drop event a second, carrying how many drops since the last one went unlogged
        next_drop_log = 0.0
        unlogged = 0
        try:
            while True:
                try:
                    n, addr = recv_into(buf)
                except OSError as exc:
                    if stop.is_set():
                        break
                    recv_errors += 1
                    if recv_errors > 100:
                        self.fail(describe_error(exc, "receive failed"))
                        break
                    continue
                if addr is None:  # shutdown() by stop(): nothing more to read
                    break
                received += 1
                port = addr[1]
                reason: str | None = None
                if port < low or port == own_port:
                    reason = echo.drop_reason((addr[0], port), own)
                if reason is None and limiter is not None:
                    if not limiter.allow(addr[0], time.monotonic()):
                        reason = echo.DROP_RATE
                out = b""
                if reason is None:
                    out = view[:n].tobytes()
                    if upper:  # echo.reply(upper=True), inlined: this is the hot loop
                        out = out.upper()
                    if guard.check(addr, view[:n], out, time.monotonic()):
                        reason = echo.DROP_LOOP
                if reason is not None:
                    dropped[reason] += 1
                else:
                    try:
                        sendto(out, addr)
                        replied += 1
                    except OSError:
                        send_errors += 1
                if quiet:
                    pass
                elif reason is None:
                    self.emit(Datagram(peer=format_peer(addr), size=n, data=bytes(view[:n])))
                else:
                    now = time.monotonic()
                    if now < next_drop_log:
                        unlogged += 1
                    else:
                        next_drop_log = now + DROP_LOG_INTERVAL
                        self.emit(
                            Datagram(
                                peer=format_peer(addr),
                                size=n,
                                data=bytes(view[:n]),
                                replied=False,
                                dropped=reason,
                                unlogged_drops=unlogged,
                            )
                        )
                        unlogged = 0
                if count is not None and received >= count:
                    stop.set()
                    break
                since_check += 1
                if since_check >= _CHECK_EVERY:
                    since_check = 0
                    if stop.is_set():
                        break
        finally:
            view.release()
            self._add_counts(received, replied, dropped, send_errors, recv_errors)
            if any(dropped.values()) and not quiet:
                notes = ", ".join(
                    f"{n_dropped} ({echo.DROP_REASONS[r]})"
                    for r, n_dropped in dropped.items()
                    if n_dropped
                )
                self.emit(Notice(level="info", message=f"not answered: {notes}"))

    def _add_counts(
        self,
        received: int,
        replied: int,
        dropped: dict[str, int],
        send_errors: int,
        recv_errors: int,
    ) -> None:
        with self._counts_lock:
            self.counts["received"] += received
            self.counts["replied"] += replied
            for reason, n_dropped in dropped.items():
                if n_dropped:
                    self.counts[f"dropped_{reason}"] += n_dropped
            if send_errors:
                self.counts["send_errors"] += send_errors
            if recv_errors:
                self.counts["receive_errors"] += recv_errors

    def _stop(self, grace: float) -> None:
        sock, thread = self._sock, self._thread
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recvfrom (returns 0, None)
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:  # an unconnected UDP socket says so, and wakes
                    raise
        if thread is not None:
            thread.join(grace)
        if sock is not None:
            sock.close()


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

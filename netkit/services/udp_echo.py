"""udp-echo: the lecture's upper-casing UDP server (or RFC 862 echo) and its client.

The server reads with ``recvfrom_into`` into one preallocated buffer the
size of the largest datagram and answers with ``sendto``; with ``quiet``
it builds no event per datagram, which is what makes it fast.  It never
answers a privileged source port or its own address (see
:class:`netkit.protocols.echo.EchoPolicy`) and can limit each source's rate.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from netkit.clients.udp_echo import read_lines as read_lines  # tests import it from here
from netkit.clients.udp_echo import send_messages as send_messages
from netkit.events import Listening, Notice, Sink
from netkit.events.udp_echo import Datagram
from netkit.net import (
    UDP_MAX_PAYLOAD,
    bind_socket,
    bound_address,
    describe_error,
    dual_stack,
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
        return Listening(
            host=address[0], port=address[1], transport="udp", dual_stack=dual_stack(self._sock)
        )

    def _allow(self) -> Callable[[object, float], bool] | None:
        return self.limiter.allow if self.limiter is not None else None

    def _policy(self, own: tuple[str, int]) -> echo.EchoPolicy:
        """The batched reader's replies: it has each source packed."""
        assert self._sock is not None
        own_packed = socket.inet_pton(self._sock.family, own[0].split("%", 1)[0])
        return echo.EchoPolicy(own, upper=self.upper, own_packed=own_packed, allow=self._allow())

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
        reader = BatchedEchoReader(loop, sock, self._policy(self._own()), self._drop)
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
        quiet = self.quiet
        count = self.count
        upper = self.upper

        def handle(data: memoryview, addr: tuple[str, int]) -> bytes:
            # only what the guard let through comes here: each one is answered
            self._received += 1
            self._replied += 1
            reply = echo.reply(bytes(data), upper=upper)
            if not quiet:
                peer = format_peer(addr)
                self.emit(Datagram(peer=peer, size=len(data), data=bytes(data), reply_wire=reply))
            if count is not None and self._replied >= count:  # --count counts answers
                self.request_stop()
            return reply

        def dropped(reason: str, data: memoryview, addr: tuple[str, int]) -> None:
            self._received += 1
            self._dropped[reason] += 1
            # a flood from a low port (or over --rate) must not become a flood of log
            # lines: one drop event a second, with how many went unlogged since the last
            if not quiet and self._reports.due(time.monotonic()):
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

        reader = DatagramReader(
            loop,
            sock,
            handle,
            bufsize=UDP_MAX_PAYLOAD,
            guard=echo.ReplyGuard(self._own(), allow=self._allow()),
            on_drop=dropped,
        )
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
            self.emit(Notice(level="info", message=echo.drop_notice(self._dropped)))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()

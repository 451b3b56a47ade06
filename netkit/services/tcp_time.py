"""tcp-time: RFC 867 daytime and RFC 868 time over TCP or UDP, and SNTP over UDP.

The server answers on accept (TCP: send, close) or per datagram (UDP: the
empty one included, as ``rdate -u`` sends; behind the guards every UDP
responder of netkit has, :class:`netkit.protocols.echo.ReplyGuard`), one loop in one thread: the
reply of a given second is built once, so a connection costs an accept,
a send and a close.  SNTP answers each request from what it holds
(:mod:`netkit.services.sntp_server`).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netkit import net
from netkit.clients.tcp_time import get_time as get_time  # tests import it from here
from netkit.events import Listening, Notice, Sink
from netkit.events.tcp_time import TimeSent
from netkit.protocols import timeproto
from netkit.protocols.echo import ReplyGuard
from netkit.services.core import Server
from netkit.services.loops import Acceptor, DatagramReader, Loop

if TYPE_CHECKING:
    from netkit.services.sntp_server import SntpHandler, SntpSettings


class TimeServer(Server):
    """Serve a protocol of :data:`netkit.protocols.timeproto.PROTOCOLS` over TCP, or UDP."""

    thread_name = "netkit-tcp-time"

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 8888,
        version: int | None = None,
        protocol: str = "daytime",
        udp: bool = False,
        count: int | None = None,
        quiet: bool = False,
        clock: Callable[[], float] = time.time,
        sntp: SntpSettings | None = None,
    ) -> None:
        if protocol not in timeproto.PROTOCOLS:
            raise ValueError(f"protocol must be one of {tuple(timeproto.PROTOCOLS)}")
        proto = timeproto.PROTOCOLS[protocol]
        if sntp is not None and protocol != "sntp":
            raise ValueError("SNTP settings go with protocol 'sntp'")
        super().__init__(sink, count=count)
        udp = udp or proto.udp_only
        self._per_request: SntpHandler | None = None
        if proto.per_request:
            from netkit.services.sntp_server import SntpHandler, SntpSettings

            self._per_request = SntpHandler(
                sntp or SntpSettings(), emit=self.emit, bump=self.bump, clock=clock, quiet=quiet
            )
        self.host = host
        self.port = port
        self.version = version
        self.protocol = protocol
        self.udp = udp
        self.quiet = quiet
        self.clock = clock
        self.reply = timeproto.SecondCache(timeproto.PROTOCOLS[protocol])
        self._sock: socket.socket | None = None

    @property
    def transport(self) -> str:
        return "udp" if self.udp else "tcp"

    def bind(self) -> tuple[str, int]:
        socktype = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        self._sock = net.bind_socket(
            self.host, self.port, socktype=socktype, version=self.version, backlog=1024
        )
        return net.bound_address(self._sock)

    def listening(self, address: tuple[str, int]) -> Listening:
        return Listening(
            host=address[0],
            port=address[1],
            transport=self.transport,
            dual_stack=net.dual_stack(self._sock),
        )

    def serve(self) -> None:
        assert self._sock is not None
        loop = Loop(self)
        try:
            if self.udp:
                if self._per_request is None:
                    # the reply ignores the request: a peer repeating itself at once is a loop too
                    guard = ReplyGuard(net.bound_address(self._sock), repeats=True)
                    reader = DatagramReader(
                        loop,
                        self._sock,
                        self._datagram,
                        on_send_error=self._send_error,
                        guard=guard,
                    )
                else:  # SNTP: its responder guards (mode 3 only, low ports other than 123)
                    reader = DatagramReader(
                        loop, self._sock, self._request, on_send_error=self._send_error
                    )
                try:
                    loop.run()
                finally:
                    reader.close()
                    self.add_counts(reader.drop_counts())
            else:
                Acceptor(loop, self._sock, self._connection)
                loop.run()
        finally:
            loop.close()

    def _sent(self, addr: tuple[object, ...], sec: int, payload: bytes) -> None:
        if not self.quiet:
            shown = self.reply.protocol.shown(payload)
            peer = net.format_peer(addr)
            self.emit(TimeSent(peer, self.transport, self.protocol, sec, shown, wire=payload))
        self.handled()

    def _connection(self, conn: socket.socket, addr: tuple[object, ...]) -> None:
        sec, payload = self.reply.at(self.clock())
        try:
            conn.send(payload)
        except OSError:
            pass  # the client left already
        conn.close()
        self._sent(addr, sec, payload)

    def _datagram(self, _data: memoryview, addr: tuple[object, ...]) -> bytes:
        # RFC 868 / 867 over UDP: any datagram asks, the empty one included
        sec, payload = self.reply.at(self.clock())
        self._sent(addr, sec, payload)
        return payload

    def _request(self, data: memoryview, addr: tuple[object, ...]) -> bytes | None:
        # a per-request protocol (SNTP): its responder decides, from the request
        assert self._per_request is not None
        reply = self._per_request.datagram(bytes(data), addr, self.clock())
        if reply is not None:
            self.handled()
        return reply

    def _send_error(self, exc: OSError) -> None:
        if exc.errno != errno.EAGAIN:
            self.emit(Notice("warning", net.describe_error(exc, "reply")))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()

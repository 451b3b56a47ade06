"""tcp-time: RFC 867 daytime and RFC 868 time, served over TCP or UDP (clients: time_client).

The server answers on accept (TCP: send, close) or per datagram (UDP: the
empty one included, as ``rdate -u`` sends), one loop in one thread: the
reply of a given second is built once, so a connection costs an accept,
a send and a close.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netkit import net
from netkit.events import Listening, Notice, Sink, TimeSent
from netkit.protocols import timeproto
from netkit.services.stream import (
    ACCEPT_BATCH,
    RESOURCE_ERRNOS,
    Backoff,
    LoopService,
    resource_notice,
)

if TYPE_CHECKING:
    from netkit.services.sntp_server import SntpHandler, SntpSettings

PROTOCOLS = ("daytime", "time", "sntp")


class _Reply:
    """The reply of the current second, built once per second."""

    def __init__(self, protocol: str, clock: Callable[[], float]) -> None:
        self.protocol = protocol
        self.clock = clock
        self.second = -1
        self.payload = b""

    def now(self) -> tuple[int, bytes]:
        sec = int(self.clock())
        if sec != self.second:
            self.second = sec
            if self.protocol == "time":
                self.payload = timeproto.pack_rfc868(sec)
            else:
                self.payload = timeproto.daytime(sec)
        return sec, self.payload

    def shown(self, payload: bytes) -> str:
        if self.protocol == "time":
            return str(int.from_bytes(payload, "big"))
        return payload.decode("ascii").rstrip("\r\n")


class TimeServer(LoopService):
    """Serve daytime (RFC 867) or time (RFC 868) over TCP, or UDP with *udp*."""

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
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        super().__init__(sink, count=count)
        self._sntp = self._sntp_handler(protocol, sntp, clock, quiet)
        if self._sntp is not None:
            udp = True  # SNTP is UDP only
        self.host = host
        self.port = port
        self.version = version
        self.protocol = protocol
        self.udp = udp
        self.quiet = quiet
        self.reply = _Reply(protocol, clock)
        self._sock: socket.socket | None = None

    @property
    def transport(self) -> str:
        return "udp" if self.udp else "tcp"

    def _start(self) -> tuple[str, int]:
        socktype = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        sock = net.bind_socket(
            self.host, self.port, socktype=socktype, version=self.version, backlog=1024
        )
        sock.setblocking(False)
        self._sock = sock
        host, port = net.bound_address(sock)
        self.emit(Listening(host=host, port=port, transport=self.transport))
        self.run_in_background()
        return host, port

    def run(self) -> None:
        assert self._sock is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(self._sock, selectors.EVENT_READ)
            serve = self._serve_udp if self.udp else self._serve_tcp
            backoff = Backoff()
            listening = True
            while not self.stop_requested:
                if not listening and not backoff.active:
                    sel.register(self._sock, selectors.EVENT_READ)
                    listening = True
                timeout = None if listening else backoff.remaining()
                sel.select(timeout)
                self.drain_wake()
                if self.stop_requested or not listening:
                    continue
                error = serve()
                if error is None:
                    backoff.ok()
                else:
                    delay = backoff.hit()
                    self.bump("accept_errors")
                    if backoff.report_due():
                        self.emit(resource_notice(error, delay))
                    sel.unregister(self._sock)
                    listening = False

    def _serve_tcp(self) -> OSError | None:
        assert self._sock is not None
        accept = self._sock.accept
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = accept()
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    return exc
                continue  # ECONNABORTED and the like: that client is gone
            sec, payload = self.reply.now()
            try:
                conn.send(payload)
            except OSError:
                pass  # the client left already
            conn.close()
            if not self.quiet:
                self.emit(
                    TimeSent(
                        net.format_peer(addr), "tcp", self.protocol, sec, self.reply.shown(payload)
                    )
                )
            self.handled()
            if self.stop_requested:
                return None
        return None

    def _serve_udp(self) -> OSError | None:
        assert self._sock is not None
        sock = self._sock
        for _ in range(ACCEPT_BATCH):
            try:
                data, addr = sock.recvfrom(net.UDP_MAX_PAYLOAD)
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    return exc
                continue  # e.g. ECONNREFUSED from an earlier reply's ICMP
            if self._sntp is not None:
                self._sntp_datagram(data, addr)
                if self.stop_requested:
                    return None
                continue
            sec, payload = self.reply.now()
            try:
                sock.sendto(payload, addr)
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    self.emit(Notice("warning", net.describe_error(exc, "reply")))
            if not self.quiet:
                self.emit(
                    TimeSent(
                        net.format_peer(addr), "udp", self.protocol, sec, self.reply.shown(payload)
                    )
                )
            self.handled()
            if self.stop_requested:
                return None
        return None

    # -- SNTP: one more protocol on the UDP path (netkit.services.sntp_server) --------

    def _sntp_handler(
        self,
        protocol: str,
        settings: SntpSettings | None,
        clock: Callable[[], float],
        quiet: bool,
    ) -> SntpHandler | None:
        if protocol != "sntp":
            return None
        from netkit.services.sntp_server import SntpHandler, SntpSettings

        return SntpHandler(
            settings or SntpSettings(), emit=self.emit, bump=self.bump, clock=clock, quiet=quiet
        )

    def _sntp_datagram(self, data: bytes, addr: tuple[object, ...]) -> None:
        assert self._sntp is not None and self._sock is not None
        reply = self._sntp.datagram(data, addr, self._sntp.clock())
        if reply is None:
            return
        try:
            self._sock.sendto(reply, addr)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                self.emit(Notice("warning", net.describe_error(exc, "reply")))
        self.handled()

    def _stop(self, grace: float) -> None:
        self.wake()
        self.join(max(grace, 0.1) + 1.0)
        if self._sock is not None:
            self._sock.close()
        self.close_wake()

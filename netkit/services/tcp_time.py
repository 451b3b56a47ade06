"""tcp-time: RFC 867 daytime and RFC 868 time, served over TCP or UDP, and a client.

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

from netkit import net
from netkit.events import Listening, Notice, Sink
from netkit.events.tcp_time import TimeReceived, TimeSent
from netkit.protocols import timeproto
from netkit.services.stream import (
    ACCEPT_BATCH,
    RESOURCE_ERRNOS,
    Backoff,
    LoopService,
    resource_notice,
)

PROTOCOLS = ("daytime", "time")


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
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        super().__init__(sink, count=count)
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
                _data, addr = sock.recvfrom(net.UDP_MAX_PAYLOAD)
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    return exc
                continue  # e.g. ECONNREFUSED from an earlier reply's ICMP
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

    def _stop(self, grace: float) -> None:
        self.wake()
        self.join(max(grace, 0.1) + 1.0)
        if self._sock is not None:
            self._sock.close()
        self.close_wake()


# --------------------------------------------------------------------------
# client


def _read_all(sock: socket.socket, limit: int, deadline: float, what: str) -> bytes:
    """Read until EOF (or *limit* + 1 bytes) before *deadline*; NetError on timeout."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            if chunks:
                break  # got a reply; the server just did not close
            raise net.NetError(f"{what}: no reply (timed out)")
        sock.settimeout(left)
        try:
            chunk = sock.recv(limit + 1 - size)
        except TimeoutError:
            if chunks:
                break
            raise net.NetError(f"{what}: no reply (timed out)") from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def get_time(
    host: str,
    port: int,
    *,
    protocol: str = "daytime",
    udp: bool = False,
    version: int | None = None,
    timeout: float = 2.0,
    clock: Callable[[], float] = time.time,
) -> TimeReceived:
    """Ask a daytime or time server; :class:`NetError` on refusal, timeout or a bad reply."""
    where = f"{net.format_host(host)}:{port}"
    what = f"{protocol} from {where}"
    limit = timeproto.RFC868_SIZE if protocol == "time" else timeproto.MAX_DAYTIME
    deadline = time.monotonic() + timeout
    if udp:
        ep = net.lookup(host, port, socktype=socket.SOCK_DGRAM, version=version)[0]
        with socket.socket(ep.family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(ep.sockaddr)
                sock.send(b"")  # RFC 868 / 867 over UDP: any datagram, the empty one too
                sock.settimeout(timeout)
                data = sock.recv(net.UDP_MAX_PAYLOAD)
            except TimeoutError:
                raise net.NetError(f"{what}: no reply within {timeout:g} s") from None
            except OSError as exc:
                raise net.NetError(net.describe_error(exc, what)) from None
        where = ep.text
    else:
        sock = net.connect_socket(
            host, port, socktype=socket.SOCK_STREAM, version=version, timeout=timeout
        )
        with sock:
            where = net.format_peer(sock.getpeername())
            try:
                data = _read_all(sock, limit, deadline, what)
            except OSError as exc:
                raise net.NetError(net.describe_error(exc, what)) from None
    local = clock()
    transport = "udp" if udp else "tcp"
    if protocol == "time":
        try:
            value = timeproto.unpack_rfc868(data)
        except ValueError as exc:
            raise net.NetError(f"{what}: {exc}") from None
        unix = timeproto.from_rfc868(value, local)
        text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
        return TimeReceived(
            protocol="time",
            unix=unix,
            text=text,
            offset_seconds=round(unix - local, 3),
            server=where,
            transport=transport,
            zone="UTC",
            rfc868=value,
        )
    if not data:
        raise net.NetError(f"{what}: empty reply")
    if len(data) > limit:
        raise net.NetError(f"{what}: oversized reply (more than {limit} bytes): not a daytime")
    from netkit.protocols.text import decode

    text = decode(data).rstrip("\r\n")
    unix_read, zone = timeproto.parse_daytime(text)
    offset = None if unix_read is None else round(unix_read - local, 3)
    return TimeReceived(
        protocol="daytime",
        unix=unix_read,
        text=text,
        offset_seconds=offset,
        server=where,
        transport=transport,
        zone=zone,
    )

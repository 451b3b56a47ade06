"""tcp-time get for RFC 867 (daytime) and RFC 868 (time): one question, one honest answer.

Both protocols count whole seconds and the server reads its clock at some
moment of the round trip, so the offset from the local clock is given in
whole seconds with the bound that this allows (never to the millisecond).
A reply of the other protocol is recognised and named, not misread.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from netkit import net
from netkit.events import TimeReceived
from netkit.protocols import timecodes, timeproto
from netkit.protocols.text import escape, is_utf8


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


def _is_text(data: bytes) -> bool:
    """Printable UTF-8 with at most a line ending: what a daytime server sends."""
    if not is_utf8(data):
        return False
    body = data.decode("utf-8").rstrip("\r\n")
    return bool(body) and all(ch.isprintable() or ch == "\t" for ch in body)


def _exchange(
    host: str, port: int, *, udp: bool, version: int | None, timeout: float, limit: int, what: str
) -> tuple[bytes, str, float]:
    """Ask once: (reply bytes, the server's address, seconds the exchange took)."""
    start = time.monotonic()
    deadline = start + timeout
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
        return data, ep.text, time.monotonic() - start
    sock = net.connect_socket(
        host, port, socktype=socket.SOCK_STREAM, version=version, timeout=timeout
    )
    with sock:
        where = net.format_peer(sock.getpeername())
        try:
            data = _read_all(sock, limit, deadline, what)
        except OSError as exc:
            raise net.NetError(net.describe_error(exc, what)) from None
    return data, where, time.monotonic() - start


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
    what = f"{protocol} from {net.format_host(host)}:{port}"
    # read as much as a daytime text even for RFC 868: a text is then recognised as one
    limit = timeproto.MAX_DAYTIME
    data, where, took = _exchange(
        host, port, udp=udp, version=version, timeout=timeout, limit=limit, what=what
    )
    what = f"{protocol} from {where}"
    received = clock()
    sent = received - took  # the wall clock when we asked, by the monotonic clock
    transport = "udp" if udp else "tcp"
    if protocol == "time":
        if len(data) != timeproto.RFC868_SIZE and _is_text(data):
            raise net.NetError(
                f"{what}: {len(data)} bytes of text '{escape(data)}': "
                "this looks like RFC 867 daytime: try --protocol daytime"
            )
        try:
            value = timeproto.unpack_rfc868(data)
        except ValueError as exc:
            raise net.NetError(f"{what}: {exc}") from None
        unix = timeproto.from_rfc868(value, received)
        whole = timecodes.whole_second_offset(unix, sent, received)
        return TimeReceived(
            protocol="time",
            unix=unix,
            text=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix)),
            offset_seconds=whole[0],
            server=where,
            transport=transport,
            zone="UTC",
            rfc868=value,
            offset_bound_seconds=whole[1],
        )
    if not data:
        raise net.NetError(f"{what}: empty reply")
    if len(data) > limit:
        raise net.NetError(f"{what}: oversized reply (more than {limit} bytes): not a daytime")
    if not _is_text(data):
        hint = (
            ": this looks like RFC 868: try --protocol time"
            if len(data) == timeproto.RFC868_SIZE
            else ""
        )
        raise net.NetError(
            f"{what}: {len(data)} bytes that are not text ({data[:16].hex(' ')}"
            f"{' ...' if len(data) > 16 else ''}: '{escape(data)}'){hint}"
        )
    text = data.decode("utf-8").rstrip("\r\n")
    unix_read, zone = timeproto.parse_daytime(text)
    offset: int | None = None
    bound: int | None = None
    if unix_read is not None:
        offset, bound = timecodes.whole_second_offset(unix_read, sent, received)
    return TimeReceived(
        protocol="daytime",
        unix=unix_read,
        text=text,
        offset_seconds=offset,
        server=where,
        transport=transport,
        zone=zone,
        offset_bound_seconds=bound,
    )

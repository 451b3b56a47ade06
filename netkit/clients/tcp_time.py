"""tcp-time get: a daytime (RFC 867) or time (RFC 868) client over TCP or UDP.

Both protocols count whole seconds and the server reads its clock at some
moment of the round trip, so the offset from the local clock is whole
seconds with the bound that allows.  A reply of the other protocol is
named, not misread (:mod:`netkit.protocols.timeproto`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from netkit import net
from netkit.events.tcp_time import TimeReceived
from netkit.protocols import timeproto


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
    on_note: Callable[[str], None] | None = None,
) -> TimeReceived:
    """Ask a daytime or time server; :class:`NetError` on refusal, timeout or a bad reply.

    Over UDP each address of *host* is tried in turn until one answers
    (*on_note* hears which one did, after a fallback); TCP connects the same way.
    One deadline, *timeout* seconds from the start, bounds it all: the name
    lookup, every address tried and the reply.
    """
    where = f"{net.format_host(host)}:{port}"
    what = f"{protocol} from {where}"
    proto = timeproto.PROTOCOLS[protocol]
    limit = proto.max_reply
    start = time.monotonic()
    deadline = start + timeout
    if udp:
        with net.DatagramPeer(
            host, port, version=version, timeout=timeout, on_note=on_note, deadline=deadline
        ) as dgram:
            data = dgram.request(b"", protocol)  # RFC 868 / 867: any datagram, the empty one too
            where = dgram.peer
    else:
        sock = net.connect_socket(
            host,
            port,
            socktype=socket.SOCK_STREAM,
            version=version,
            timeout=timeout,
            deadline=deadline,
        )
        with sock:
            where = net.format_peer(sock.getpeername())
            try:
                data = _read_all(sock, limit, deadline, what)
            except OSError as exc:
                raise net.NetError(net.describe_error(exc, what)) from None
    received = clock()
    sent = received - (time.monotonic() - start)  # when we asked, by the monotonic clock
    transport = "udp" if udp else "tcp"
    what = f"{protocol} from {where}"
    try:
        reading = proto.read(data, sent, received)
    except ValueError as exc:
        raise net.NetError(f"{what}: {exc}") from None
    return TimeReceived(
        protocol=proto.name,
        unix=reading.unix,
        text=reading.text,
        offset_seconds=reading.offset_seconds,
        server=where,
        transport=transport,
        zone=reading.zone,
        rfc868=reading.rfc868,
        offset_bound_seconds=reading.offset_bound_seconds,
        wire=data,
        request_wire=b"" if udp else None,
    )

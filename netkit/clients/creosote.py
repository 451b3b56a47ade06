"""creosote spew and the logging handler: send messages to a creosote listener."""

from __future__ import annotations

import logging
import os
import socket

from netkit.events.creosote import Spewed
from netkit.net import NetError, connect_socket, describe_error, format_host, format_peer
from netkit.protocols import creosote

DEFAULT_PORT = creosote.DEFAULT_PORT
DEFAULT_CHUNK_SIZE = creosote.DEFAULT_CHUNK_SIZE


def new_message_id() -> str:
    return os.urandom(4).hex()


# --------------------------------------------------------------------------
# sender


def spew(
    data: bytes,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    version: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    wait: float = 0.25,
) -> Spewed:
    """Send *data* as one message; return what was sent.

    Raises ``ValueError`` if *chunk_size* cannot carry the message (a usage
    error) and :class:`NetError` if the listener's host refused (ICMP port
    unreachable, seen as ECONNREFUSED on the connected socket during the
    sends or within *wait* seconds after the last one).
    """
    datagrams = creosote.split(data, chunk_size, new_message_id())
    where = f"{format_host(host)}:{port}"
    sock = connect_socket(host, port, socktype=socket.SOCK_DGRAM, version=version)
    try:
        peer = format_peer(sock.getpeername())
        try:
            for datagram in datagrams:
                sock.send(datagram)
            # an ICMP error arrives as a pending socket error: readable at once
            sock.settimeout(wait)
            try:
                sock.recv(1)
            except TimeoutError:
                pass
        except ConnectionRefusedError:
            raise NetError(
                f"no listener on {where}: the host answered ICMP port unreachable "
                "(connection refused)"
            ) from None
        except OSError as exc:
            raise NetError(describe_error(exc, f"cannot send to {where}")) from exc
    finally:
        sock.close()
    return Spewed(
        peer=peer,
        bytes=len(data),
        chunks=len(datagrams),
        datagram_bytes=sum(len(d) for d in datagrams),
    )


# --------------------------------------------------------------------------
# logging handler


class CreosoteHandler(logging.Handler):
    """Send log records to a creosote listener (``netkit creosote listen``).

    One record is one message, chunked when long (tracebacks), so the
    listener shows it whole.  The socket is non-blocking and unconnected:
    with no listener running the datagrams are simply lost, and a full
    socket buffer drops a record instead of stopping the program.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        if chunk_size < creosote.HEADER_LEN + 4:
            raise ValueError(f"chunk_size must be at least {creosote.HEADER_LEN + 4}")
        family, _type, _proto, _canon, sockaddr = socket.getaddrinfo(
            host, port, 0, socket.SOCK_DGRAM
        )[0]
        self.address = sockaddr
        self.chunk_size = chunk_size
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.format(record).encode("utf-8", "backslashreplace")
            for datagram in creosote.split(data, self.chunk_size, new_message_id()):
                self.sock.sendto(datagram, self.address)
        except OSError:
            pass  # no room, nobody listening, no route: drop the record, never block
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            self.sock.close()
        finally:
            self.release()
        super().close()

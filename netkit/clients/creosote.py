"""creosote spew: send messages to a creosote listener.

:class:`Spewer` and :func:`spew` send messages as netkit's chunked UDP
datagrams (``netkit creosote spew``).  The logging handler lives in
:mod:`netkit.clients.creosote_handler` (``logging`` is not loaded here).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from netkit.events.creosote_spew import Spewed
from netkit.net import DatagramPeer, NetError, NoAnswer, is_loopback
from netkit.protocols import creosote_chunks

DEFAULT_PORT = creosote_chunks.DEFAULT_PORT
DEFAULT_CHUNK_SIZE = creosote_chunks.DEFAULT_CHUNK_SIZE
DEFAULT_WAIT = 0.25  # seconds to wait for an ICMP refusal from another host


def new_message_id() -> str:
    return os.urandom(4).hex()


# --------------------------------------------------------------------------
# sender


class Spewer:
    """UDP datagrams to a listener, one message at a time, to the first address
    of *host* that does not refuse them.

    UDP has no acknowledgement: the only word a listener's host sends back
    is an ICMP "port unreachable" when nothing listens, seen as
    ECONNREFUSED on the connected socket.  Until one address has taken a
    message, a refused address hands over to the next one of the name
    (:class:`netkit.net.DatagramPeer`; *on_note* hears which one took it);
    a silent address cannot be told from a listener.  How long to wait for
    a refusal (:func:`refusal_wait`): no wait for an address of this host,
    whose kernel refuses during the send itself; otherwise *wait* seconds.

    ``strict``: a refusal from the last address raises :class:`NetError`
    (one message); otherwise it is counted in :attr:`refused` and sending
    goes on (a stream of lines outlives a listener's restart).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        version: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        strict: bool = True,
        wait: float | None = None,
        lookup_timeout: float | None = None,
        on_datagram: Callable[[bytes], None] | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.on_datagram = on_datagram  # told each datagram sent (--hex)
        self.chunk_size = chunk_size
        self.strict = strict
        self.wait = DEFAULT_WAIT if wait is None else wait
        deadline = None if lookup_timeout is None else time.monotonic() + lookup_timeout
        self.dest = DatagramPeer(
            host, port, version=version, on_note=on_note, deadline=deadline, took="took it"
        )
        self.messages = self.bytes = self.chunks = self.datagram_bytes = self.refused = 0
        self._unchecked = False  # the last message went out with no look for a refusal

    @property
    def peer(self) -> str:
        """``host:port`` of the address in use."""
        return self.dest.peer

    @property
    def where(self) -> str:
        return self.dest.peer

    def _no_listener(self) -> NoAnswer:
        return NoAnswer(
            f"no listener on {self.peer}: the host answered ICMP port unreachable "
            "(connection refused)",
            "connection refused",
        )

    def _check(self, sock: socket.socket, wait: float) -> None:
        """Raise :class:`NoAnswer` if the address refused what was sent (within *wait*)."""
        try:
            if wait <= 0:
                sock.setblocking(False)
            else:
                sock.settimeout(wait)
            sock.recv(1)  # an ICMP error arrives as a pending socket error
        except (BlockingIOError, TimeoutError):
            pass
        except ConnectionRefusedError:
            raise self._no_listener() from None
        except OSError as exc:
            raise NoAnswer.from_error(exc, f"cannot send to {self.peer}") from None
        finally:
            sock.settimeout(None)

    def send(self, data: bytes) -> None:
        """Send *data* as one message (``ValueError`` if the chunk size cannot carry it)."""
        datagrams = creosote_chunks.split(data, self.chunk_size, new_message_id())

        def attempt(sock: socket.socket) -> None:
            for datagram in datagrams:
                try:
                    sock.send(datagram)
                except ConnectionRefusedError:
                    if not self.dest.answered:  # this address refused: try the next one
                        raise self._no_listener() from None
                    self.refused += 1  # the previous message was refused
                    sock.send(datagram)
                except OSError as exc:
                    raise NoAnswer.from_error(exc, f"cannot send to {self.peer}") from None
                if self.on_datagram is not None:
                    self.on_datagram(datagram)
            self._unchecked = self.dest.answered  # the first one is checked here
            if not self.dest.answered:
                self._check(sock, refusal_wait(sock, self.wait))

        try:
            self.dest.exchange(attempt)
        except NoAnswer as exc:
            if self.strict:
                raise NetError(str(exc)) from None
            self.refused += 1
        self.messages += 1
        self.bytes += len(data)
        self.chunks += len(datagrams)
        self.datagram_bytes += sum(len(d) for d in datagrams)

    def finish(self) -> Spewed:
        """Wait for an ICMP refusal of the last datagram (:func:`refusal_wait`); close."""
        try:
            if self._unchecked:
                sock = self.dest.sock
                try:
                    self._check(sock, refusal_wait(sock, self.wait))
                except NoAnswer as exc:
                    if self.strict:
                        raise NetError(str(exc)) from None
                    self.refused += 1
        finally:
            self.close()
        return Spewed(
            peer=self.peer,
            bytes=self.bytes,
            chunks=self.chunks,
            datagram_bytes=self.datagram_bytes,
            messages=self.messages,
            refused=self.refused,
        )

    def close(self) -> None:
        self.dest.close()


def refusal_wait(sock: socket.socket, wait: float) -> float:
    """How long to wait for an ICMP refusal of what *sock* sent: none when the
    peer is an address of this host (loopback, or the address the kernel
    chose as our own source: the route is local), whose kernel answers
    within the send call itself; otherwise *wait*."""
    try:
        peer = str(sock.getpeername()[0])
        own = str(sock.getsockname()[0])
    except OSError:
        return wait
    # (the kernel gives both in one canonical text form)
    if is_loopback(peer) or peer.partition("%")[0] == own.partition("%")[0]:
        return 0.0
    return wait


def spew(
    data: bytes,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    version: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    wait: float | None = None,
) -> Spewed:
    """Send *data* as one message; return what was sent.

    Raises ``ValueError`` if *chunk_size* cannot carry the message (a usage
    error) and :class:`NetError` if the listener's host refused (ICMP port
    unreachable, seen as ECONNREFUSED on the connected socket during the
    sends or after the last one: at once from this host, within *wait*
    seconds (0.25 unless given) from another).
    """
    creosote_chunks.split(data, chunk_size, new_message_id())  # a usage error before any socket
    sender = Spewer(host, port, version=version, chunk_size=chunk_size, wait=wait)
    try:
        sender.send(data)
    except BaseException:
        sender.close()
        raise
    return sender.finish()

"""UDP responders' guards, in one place, and the echo server's replies.

Every UDP server of netkit that answers a datagram (udp-echo, ``tcp-time
--udp``, ``upper-server --udp``) asks a :class:`ReplyGuard` first: never a
privileged source port, never its own address, at most ``--rate`` per
source, and not a peer that answers our replies back-to-back (another
responder: the ping-pong loop).  Pure code, no sockets.
"""

from __future__ import annotations

from collections.abc import Callable

# inetd's rule: never answer a privileged source port.  Those are other
# servers (echo 7, daytime 13, chargen 19, DNS 53, ...), and two of them
# answering each other is the classic UDP ping-pong loop.
LOWEST_REPLY_PORT = 1024

DROP_LOW_PORT = "low_port"
DROP_SELF = "self"
DROP_RATE = "rate"
DROP_LOOP = "loop"

# Two responders on ports >= 1024 look like clients to each other; once a
# (spoofed) datagram sets them off they would answer each other forever.  A
# peer that sends back our last reply to it (as it was, or upper-cased, as
# an echo or upper-server does), LOOP_STREAK times in a row, each time
# within LOOP_WINDOW seconds of that reply, is taken to be another
# responder: that datagram is not answered, which ends the loop.  A server
# whose reply does not depend on the request (tcp-time) also counts a peer
# that sends the same datagram again at once (another time server).  A
# client that really does that, back-to-back, loses one reply in
# LOOP_STREAK and is answered again once it pauses (a retry after a timeout).
LOOP_STREAK = 64
LOOP_WINDOW = 0.05

# each a phrase without parentheses: the stop notice puts one in parentheses
DROP_REASONS = {
    DROP_LOW_PORT: f"source port below {LOWEST_REPLY_PORT}, another server's: a reply could loop",
    DROP_SELF: "source is this server's own address and port: a reflection loop",
    DROP_RATE: "source over its --rate limit",
    DROP_LOOP: "source kept answering our replies at once, another UDP server's: a loop",
}


def drop_notice(dropped: dict[str, int]) -> str:
    """The stop notice for the datagrams left unanswered, by reason, e.g.
    ``not answered: 3 datagrams (source over its --rate limit)``."""
    parts = [
        f"{n} datagram{'' if n == 1 else 's'} ({DROP_REASONS[reason]})"
        for reason, n in dropped.items()
        if n
    ]
    return "not answered: " + "; ".join(parts)


def reply(data: bytes, *, upper: bool) -> bytes:
    """The reply to *data*: ASCII upper-cased (bytes-wise) or unchanged.

    ``bytes.upper`` only maps ``a``-``z``: the reply is exactly as long as
    the request and any byte sequence (invalid UTF-8 included) is fine.
    """
    return data.upper() if upper else data


def _is_unspecified(host: str) -> bool:
    import ipaddress  # (servers only: the udp-echo client imports this module)

    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def drop_reason(source: tuple[str, int], own: tuple[str, int]) -> str | None:
    """Why a datagram from *source* must not be answered by a server bound to *own*.

    ``None`` means reply.  A server bound to a wildcard address treats any
    source with its own port as itself (it cannot cheaply know every local
    address; refusing a remote peer that happens to use the same port is the
    safe side).
    """
    return ReplyGuard(own).refused(*source)


class _Peer:
    """What the loop guard remembers of one source."""

    __slots__ = ("data", "reply", "reply_upper", "sent_at", "streak")

    def __init__(self, data: bytes) -> None:
        self.reply = b""  # our last reply to it
        self.reply_upper: bytes | None = None  # its upper-cased form, when the caller had it
        self.sent_at = float("-inf")
        self.streak = 0  # datagrams in a row that answered a reply at once
        self.data = data  # its last datagram (with repeats)


class LoopGuard:
    """Spots another responder answering us (see :data:`LOOP_STREAK`).

    ``peer`` is any hashable form of the source address.  Call
    :meth:`looped` for each datagram before answering it and :meth:`sent`
    with the reply sent.  With *repeats*, a datagram equal to the peer's
    previous one counts too (for a server whose reply ignores the request).
    Memory is bounded: past *max_peers* sources the table starts afresh.
    """

    __slots__ = ("_last", "max_peers", "repeats", "streak", "window")

    def __init__(
        self,
        streak: int = LOOP_STREAK,
        window: float = LOOP_WINDOW,
        max_peers: int = 4096,
        *,
        repeats: bool = False,
    ) -> None:
        self.streak = streak
        self.window = window
        self.max_peers = max_peers
        self.repeats = repeats
        self._last: dict[object, _Peer] = {}

    def looped(self, peer: object, data: bytes | memoryview, now: float) -> bool:
        """True: *data* from *peer* is a loop, do not answer (and forget the peer)."""
        last = self._last.get(peer)
        if last is None:
            if len(self._last) >= self.max_peers:
                self._last.clear()
            self._last[peer] = _Peer(bytes(data) if self.repeats else b"")
            return False
        reply = last.reply
        if now - last.sent_at <= self.window and (
            (len(data) == len(reply) and (data == reply or data == reply.upper()))
            or (self.repeats and data == last.data)
        ):
            last.streak += 1
            if last.streak >= self.streak:
                del self._last[peer]  # a later retry is answered again
                return True
        else:
            last.streak = 0
        if self.repeats:
            last.data = bytes(data)
        return False

    def sent(self, peer: object, reply: bytes, now: float) -> None:
        """*reply* went to *peer* at *now* (after :meth:`looped` said answer)."""
        last = self._last.get(peer)
        if last is not None:
            last.reply = reply
            last.reply_upper = None
            last.sent_at = now

    def check(
        self,
        peer: object,
        data: bytes | memoryview,
        reply: bytes,
        now: float,
        reply_upper: bytes | None = None,
    ) -> bool:
        """:meth:`looped`, then :meth:`sent` with *reply* unless it was a loop.

        The same steps in one look-up of the peer: this runs for every
        datagram a UDP server answers.  *reply_upper* is ``reply.upper()``
        when the caller has it already (an upper-casing server passes the
        reply itself), so it is not computed again for the next datagram.
        """
        table = self._last
        last = table.get(peer)
        if last is None:
            if len(table) >= self.max_peers:
                table.clear()
            last = table[peer] = _Peer(bytes(data) if self.repeats else b"")
        else:
            last_reply = last.reply
            if now - last.sent_at > self.window:
                echoed = False
            elif data == last_reply:
                echoed = True
            else:
                # our reply upper-cased: nothing more to compare when the reply
                # is its own upper case (an upper-casing server); otherwise
                # compared (and computed, if need be) only for a datagram as
                # long as the reply
                upper = last.reply_upper
                echoed = (
                    upper is not last_reply
                    and len(data) == len(last_reply)
                    and data == (last_reply.upper() if upper is None else upper)
                )
                if not echoed and self.repeats:
                    echoed = data == last.data
            if echoed:
                last.streak += 1
                if last.streak >= self.streak:
                    del table[peer]  # a later retry is answered again
                    return True
            else:
                last.streak = 0
            if self.repeats:
                last.data = bytes(data)
        last.reply = reply
        last.reply_upper = reply_upper
        last.sent_at = now
        return False


class ReplyGuard:
    """What every UDP responder of netkit refuses to answer: the one place that decides.

    A server bound to *own* asks :meth:`check` for each datagram before
    answering it and tells :meth:`sent` what it answered.  The source host
    may be given as text (``"127.0.0.1"``) or packed (``socket.inet_pton``
    bytes, as a batched reader has it); *own_packed* is the server's own
    host in that form.  *allow* is an optional per-source rate check
    (``RateLimiter.allow``).  *repeats*: see :class:`LoopGuard`.
    """

    __slots__ = ("_allow", "_guard", "_own_hosts", "_own_port", "_wildcard")

    def __init__(
        self,
        own: tuple[str, int],
        *,
        own_packed: bytes = b"",
        allow: Callable[[object, float], bool] | None = None,
        repeats: bool = False,
    ) -> None:
        own_host, self._own_port = own
        self._own_hosts = {own_host, own_packed} - {b""}
        self._wildcard = _is_unspecified(own_host)
        self._allow = allow
        self._guard = LoopGuard(repeats=repeats)

    def refused(self, host: object, port: int) -> str | None:
        """The reason never to answer this source (another server, or ourselves), or None."""
        if port < LOWEST_REPLY_PORT:
            return DROP_LOW_PORT
        if port == self._own_port and (self._wildcard or host in self._own_hosts):
            return DROP_SELF
        return None

    def check(self, host: object, port: int, data: bytes | memoryview, now: float) -> str | None:
        """Why not to answer this datagram (a ``DROP_*`` key), or None: answer it."""
        if port < LOWEST_REPLY_PORT or port == self._own_port:
            reason = self.refused(host, port)
            if reason is not None:
                return reason
        if self._allow is not None and not self._allow(host, now):
            return DROP_RATE
        if self._guard.looped((host, port), data, now):
            return DROP_LOOP
        return None

    def sent(self, host: object, port: int, reply: bytes, now: float) -> None:
        """The reply to the datagram :meth:`check` let through."""
        self._guard.sent((host, port), reply, now)


class EchoPolicy(ReplyGuard):
    """The echo server's replies behind the :class:`ReplyGuard`, for a batched reader.

    :meth:`answer` gives the reply, the datagram (upper-cased with *upper*),
    or the reason not to answer (a ``DROP_*`` key of :data:`DROP_REASONS`).
    The sources come packed (see :meth:`answer`), so *own_packed*, the
    server's own host in that form, is required.
    """

    __slots__ = ("_host_len", "_upper")

    def __init__(
        self,
        own: tuple[str, int],
        *,
        upper: bool,
        own_packed: bytes,
        allow: Callable[[object, float], bool] | None = None,
    ) -> None:
        if len(own_packed) not in (4, 16):
            raise ValueError(f"own_packed: an inet_pton address, not {own_packed!r}")
        super().__init__(own, own_packed=own_packed, allow=allow)
        self._upper = upper
        self._host_len = len(own_packed)

    def answer(self, source: bytes, data: bytes, now: float) -> bytes | str:
        """The reply to *data*, or why not to answer it (a ``DROP_*`` key of
        :data:`DROP_REASONS`: a ``str``, where a reply is ``bytes``).

        *source* is the sender in the packed form a batched reader has at
        hand: first its port (two bytes, network order), last its host as
        ``socket.inet_pton`` gives it (as many bytes as *own_packed*).
        Bytes between the two (an IPv6 socket address's flow information)
        are only part of the key: *source* is also the loop guard's key.
        """
        # ReplyGuard.check's steps, with the loop guard's look-up and its
        # record of the reply in one call (this runs for every datagram)
        port = source[0] << 8 | source[1]
        if port < LOWEST_REPLY_PORT or port == self._own_port:
            reason = self.refused(source[-self._host_len :], port)
            if reason is not None:
                return reason
        if self._allow is not None and not self._allow(source[-self._host_len :], now):
            return DROP_RATE
        if self._upper:
            out = data.upper()
            # an upper-cased reply is its own upper-case form
            if self._guard.check(source, data, out, now, out):
                return DROP_LOOP
        elif self._guard.check(source, data, data, now):
            return DROP_LOOP
        else:
            out = data
        return out

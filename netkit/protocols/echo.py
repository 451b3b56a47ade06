"""UDP echo (RFC 862) and the lecture's upper-casing server: replies and the loop guard.

Pure functions: what to reply to a datagram, and whether to reply at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

# inetd's rule: never answer a privileged source port.  Those are other
# servers (echo 7, daytime 13, chargen 19, DNS 53, ...), and two of them
# answering each other is the classic UDP ping-pong loop.
LOWEST_REPLY_PORT = 1024

DROP_LOW_PORT = "low_port"
DROP_SELF = "self"
DROP_RATE = "rate"
DROP_LOOP = "loop"

# Two echo servers on ports >= 1024 look like clients to each other; once a
# (spoofed) datagram sets them off they would answer each other forever.  A
# peer that sends back exactly our last reply to it, LOOP_STREAK times in a
# row, each time within LOOP_WINDOW seconds of that reply, is taken to be
# another echo server: that datagram is not answered, which ends the loop.
# A client that really repeats one message back-to-back that often loses
# one reply and is answered again once it pauses (a retry after a timeout).
LOOP_STREAK = 64
LOOP_WINDOW = 0.05

DROP_REASONS = {
    DROP_LOW_PORT: f"source port below {LOWEST_REPLY_PORT} (another server: a reply could loop)",
    DROP_SELF: "source is this server's own address and port (reflection loop)",
    DROP_RATE: "source over its --rate limit",
    DROP_LOOP: "source kept sending back our own replies at once (another echo server: loop)",
}


def reply(data: bytes, *, upper: bool) -> bytes:
    """The reply to *data*: ASCII upper-cased (bytes-wise) or unchanged.

    ``bytes.upper`` only maps ``a``-``z``: the reply is exactly as long as
    the request and any byte sequence (invalid UTF-8 included) is fine.
    """
    return data.upper() if upper else data


def _is_unspecified(host: str) -> bool:
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
    return EchoPolicy(own, upper=False).refused(*source)


class LoopGuard:
    """Spots another echo server answering us (see :data:`LOOP_STREAK`).

    ``peer`` is any hashable form of the source address; call :meth:`check`
    for each datagram about to be answered.  Memory is bounded: past
    *max_peers* sources the table starts afresh.
    """

    __slots__ = ("_last", "max_peers", "streak", "window")

    def __init__(
        self, streak: int = LOOP_STREAK, window: float = LOOP_WINDOW, max_peers: int = 4096
    ) -> None:
        self.streak = streak
        self.window = window
        self.max_peers = max_peers
        self._last: dict[object, tuple[bytes, float, int]] = {}

    def check(self, peer: object, data: bytes | memoryview, reply: bytes, now: float) -> bool:
        """True: *data* from *peer* is a loop, do not answer.  False: answer with *reply*."""
        last = self._last.get(peer)
        streak = 0
        if last is not None:
            previous, sent_at, count = last
            if len(data) == len(previous) and now - sent_at <= self.window and data == previous:
                streak = count + 1
                if streak >= self.streak:
                    del self._last[peer]  # forget it: a later retry is answered again
                    return True
        if last is None and len(self._last) >= self.max_peers:
            self._last.clear()
        self._last[peer] = (reply, now, streak)
        return False


class EchoPolicy:
    """What an echo server answers and what it drops: the one place that decides.

    A server bound to *own* asks :meth:`answer` for each datagram; the
    source host may be given as text (``"127.0.0.1"``) or packed
    (``socket.inet_pton`` bytes, as a batched reader has it), and *own_packed*
    is the server's own host in that form.  *allow* is an optional per-source
    rate check (``RateLimiter.allow``).  The reply is the datagram
    (upper-cased with *upper*) or ``None`` with the reason (a ``DROP_*`` key
    of :data:`DROP_REASONS`).
    """

    __slots__ = ("_allow", "_guard", "_own_hosts", "_own_port", "_upper", "_wildcard")

    def __init__(
        self,
        own: tuple[str, int],
        *,
        upper: bool,
        own_packed: bytes = b"",
        allow: Callable[[object, float], bool] | None = None,
    ) -> None:
        own_host, self._own_port = own
        self._own_hosts = {own_host, own_packed} - {b""}
        self._wildcard = _is_unspecified(own_host)
        self._upper = upper
        self._allow = allow
        self._guard = LoopGuard()

    def refused(self, host: object, port: int) -> str | None:
        """The reason never to answer this source (another server, or ourselves), or None."""
        if port < LOWEST_REPLY_PORT:
            return DROP_LOW_PORT
        if port == self._own_port and (self._wildcard or host in self._own_hosts):
            return DROP_SELF
        return None

    def answer(
        self, host: object, port: int, data: bytes | memoryview, now: float
    ) -> tuple[bytes | None, str | None]:
        """(reply, None) to answer; (None, reason) to drop."""
        if port < LOWEST_REPLY_PORT or port == self._own_port:
            reason = self.refused(host, port)
            if reason is not None:
                return None, reason
        if self._allow is not None and not self._allow(host, now):
            return None, DROP_RATE
        out = bytes(data)
        if self._upper:
            out = out.upper()
        if self._guard.check((host, port), data, out, now):
            return None, DROP_LOOP
        return out, None

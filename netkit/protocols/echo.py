"""UDP echo (RFC 862) and the lecture's upper-casing server: replies and the loop guard.

Pure functions: what to reply to a datagram, and whether to reply at all.
"""

from __future__ import annotations

import ipaddress

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
    host, port = source
    if port < LOWEST_REPLY_PORT:
        return DROP_LOW_PORT
    own_host, own_port = own
    if port == own_port and (host == own_host or _is_unspecified(own_host)):
        return DROP_SELF
    return None


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

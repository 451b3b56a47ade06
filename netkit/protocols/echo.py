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

DROP_REASONS = {
    DROP_LOW_PORT: f"source port below {LOWEST_REPLY_PORT} (another server: a reply could loop)",
    DROP_SELF: "source is this server's own address and port (reflection loop)",
    DROP_RATE: "source over its --rate limit",
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

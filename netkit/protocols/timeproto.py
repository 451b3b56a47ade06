"""Time protocols: RFC 868 (binary seconds since 1900) and RFC 867 (daytime text).

RFC 868 sends the time as a 32-bit unsigned big-endian count of seconds
since 1900-01-01 00:00 UTC.  The field rolls over on 2036-02-07 06:28:16
UTC; :func:`from_rfc868` picks the 2^32-second era nearest to a reference
time (the local clock), so a value read after the wrap is still right.

RFC 867 leaves the daytime text free; the lecture's server (and inetd's)
send ``time.ctime()`` — local time without a zone — then CRLF.
"""

from __future__ import annotations

import calendar
import math
import struct
import time
from typing import NamedTuple

#: seconds from 1900-01-01 to 1970-01-01 (70 years, 17 of them leap years)
RFC868_OFFSET = 2_208_988_800
WRAP = 1 << 32
#: the first Unix second at which the RFC 868 field has wrapped to 0
WRAP_UNIX = WRAP - RFC868_OFFSET

RFC868_SIZE = 4
#: a longer daytime reply than this is not a time
MAX_DAYTIME = 256


def to_rfc868(unix: float) -> int:
    """Unix time -> the RFC 868 field (whole seconds, modulo 2^32)."""
    return (math.floor(unix) + RFC868_OFFSET) % WRAP


def from_rfc868(value: int, reference: float) -> int:
    """The RFC 868 field -> Unix time, in the era nearest to *reference* (Unix seconds)."""
    if not 0 <= value < WRAP:
        raise ValueError(f"{value} is not a 32-bit RFC 868 value")
    base = value - RFC868_OFFSET
    era = round((reference - base) / WRAP)
    return base + era * WRAP


def pack_rfc868(unix: float) -> bytes:
    return struct.pack("!I", to_rfc868(unix))


def unpack_rfc868(data: bytes) -> int:
    """The 4-byte RFC 868 reply -> its 32-bit value; ValueError if not 4 bytes."""
    if len(data) < RFC868_SIZE:
        raise ValueError(f"short reply: {len(data)} bytes, RFC 868 sends 4")
    if len(data) > RFC868_SIZE:
        raise ValueError(f"oversized reply: {len(data)} bytes, RFC 868 sends 4")
    value: int = struct.unpack("!I", data)[0]
    return value


def daytime(unix: float) -> bytes:
    """The daytime reply: ``time.ctime()`` (local time) and CRLF, like the lecture."""
    return time.ctime(unix).encode("ascii") + b"\r\n"


# formats seen from daytime servers; the zone, when given, decides how to read it
_LOCAL_FORMATS = ("%a %b %d %H:%M:%S %Y",)  # ctime: netkit, openbsd-inetd, the lecture
_UTC_FORMATS = (
    "%d %b %Y %H:%M:%S UTC",  # xinetd: "25 NOV 2026 18:49:27 UTC"
    "%d %b %Y %H:%M:%S GMT",
    "%a, %d %b %Y %H:%M:%S GMT",  # RFC 1123
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S UTC",
)


def parse_daytime(text: str) -> tuple[int | None, str]:
    """Read a daytime reply: (Unix time or None, how it was read).

    ctime text carries no zone: it is read as local time, and the second
    element says so.  Text in a form not known here gives ``(None, ...)``.
    """
    s = " ".join(text.split())
    # ctime first: the usual reply, and no text fits both kinds (strptime
    # builds a pattern per format on first use: one, not six, for ctime)
    for fmt in _LOCAL_FORMATS:
        try:
            tm = time.strptime(s, fmt)
        except ValueError:
            continue
        return int(time.mktime(tm)), "no zone given: read as local time"
    for fmt in _UTC_FORMATS:
        try:
            tm = time.strptime(s, fmt)
        except ValueError:
            continue
        return calendar.timegm(tm), "UTC"
    return None, "not a time format netkit knows"


# --------------------------------------------------------------------------
# the protocols tcp-time speaks: one object each, named in PROTOCOLS


def whole_second_offset(server_second: int, sent: float, received: float) -> tuple[int, int]:
    """The offset a whole-second protocol (RFC 867, RFC 868) can honestly claim: (offset, bound).

    The server read its clock somewhere between *sent* and *received* (local
    Unix times) and truncated it to *server_second*, so the true offset lies in
    (server_second - received, server_second + 1 - sent).  Returned as whole
    seconds: the offset and a bound such that offset +- bound holds that interval.
    """
    center = server_second + 0.5 - (sent + received) / 2
    half = 0.5 + max(received - sent, 0.0) / 2
    offset = round(center)
    return offset, math.ceil(half + abs(center - offset) - 1e-9)


def _is_text(data: bytes) -> bool:
    """Printable UTF-8 with at most a line ending: what a daytime server sends."""
    try:
        body = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return False
    return bool(body) and all(ch.isprintable() or ch == "\t" for ch in body)


class Reading(NamedTuple):
    """What a client read from a time server's reply."""

    unix: int | None  # None: a daytime text in no form known here
    text: str
    offset_seconds: int | None  # server minus local clock, whole seconds
    zone: str
    rfc868: int | None = None
    offset_bound_seconds: int | None = None  # the true offset is within offset +- this


class TimeProtocol:
    """One time protocol: what a server sends in a given second, what a client reads.

    Override :meth:`encode` (the reply of a second), :meth:`shown` (that
    reply as the log shows it) and :meth:`read` (a client's reading of a
    reply, asked at local time *sent* and answered at *received*; ValueError
    with the reason when it is no such reply).  ``max_reply`` bounds what a
    client reads.  A new protocol is one subclass and one entry in
    :data:`PROTOCOLS`.  ``per_request`` protocols (SNTP) answer each request
    from what it holds, not with the reply of the second: the server hands
    their datagrams to the protocol's own responder instead.
    """

    name = ""
    max_reply = 0
    udp_only = False
    per_request = False

    def encode(self, unix_second: int) -> bytes:
        raise NotImplementedError

    def shown(self, payload: bytes) -> str:
        raise NotImplementedError

    def read(self, data: bytes, sent: float, received: float) -> Reading:
        raise NotImplementedError


class Daytime(TimeProtocol):
    """RFC 867: a ctime line and CRLF, read back in any form :func:`parse_daytime` knows."""

    name = "daytime"
    max_reply = MAX_DAYTIME

    def encode(self, unix_second: int) -> bytes:
        return daytime(unix_second)

    def shown(self, payload: bytes) -> str:
        return payload.decode("ascii").rstrip("\r\n")

    def read(self, data: bytes, sent: float, received: float) -> Reading:
        if not data:
            raise ValueError("empty reply")
        if len(data) > self.max_reply:
            raise ValueError(f"oversized reply (more than {self.max_reply} bytes): not a daytime")
        if not _is_text(data):
            from netkit.protocols.text import escape

            hint = ": this looks like RFC 868: try --protocol time" if len(data) == 4 else ""
            shown = data[:16].hex(" ") + (" ..." if len(data) > 16 else "")
            raise ValueError(
                f"{len(data)} bytes that are not text ({shown}: '{escape(data)}'){hint}"
            )
        text = data.decode("utf-8").rstrip("\r\n")
        unix, zone = parse_daytime(text)
        if unix is None:
            return Reading(None, text, None, zone)
        offset, bound = whole_second_offset(unix, sent, received)
        return Reading(unix, text, offset, zone, offset_bound_seconds=bound)


class Time(TimeProtocol):
    """RFC 868: 4 bytes, seconds since 1900, read in the era nearest the local clock."""

    name = "time"
    # read as much as a daytime text: a text reply is then recognised as one
    max_reply = MAX_DAYTIME

    def encode(self, unix_second: int) -> bytes:
        return pack_rfc868(unix_second)

    def shown(self, payload: bytes) -> str:
        return str(int.from_bytes(payload, "big"))

    def read(self, data: bytes, sent: float, received: float) -> Reading:
        if len(data) != RFC868_SIZE and _is_text(data):
            from netkit.protocols.text import escape

            raise ValueError(
                f"{len(data)} bytes of text '{escape(data)}': "
                "this looks like RFC 867 daytime: try --protocol daytime"
            )
        value = unpack_rfc868(data)
        unix = from_rfc868(value, received)
        text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
        offset, bound = whole_second_offset(unix, sent, received)
        return Reading(unix, text, offset, "UTC", value, bound)


class Sntp(TimeProtocol):
    """SNTP (RFC 4330, the NTPv4 packet of RFC 5905): UDP only, one reply per request.

    Its packets, checks and responder are in :mod:`netkit.protocols.ntp`; the
    client is :mod:`netkit.clients.sntp`.  There is no reply of the second
    (the reply echoes the request's transmit timestamp), so :meth:`encode`
    and :meth:`read` are not used.
    """

    name = "sntp"
    max_reply = 48
    udp_only = True
    per_request = True


#: the protocols by name: ``--protocol`` choices come from here
PROTOCOLS: dict[str, TimeProtocol] = {p.name: p for p in (Daytime(), Time(), Sntp())}


class SecondCache:
    """The reply of the current second, built once per second (a server's hot path)."""

    __slots__ = ("payload", "protocol", "second")

    def __init__(self, protocol: TimeProtocol) -> None:
        self.protocol = protocol
        self.second = -1
        self.payload = b""

    def at(self, now: float) -> tuple[int, bytes]:
        sec = int(now)
        if sec != self.second:
            self.second = sec
            self.payload = self.protocol.encode(sec)
        return sec, self.payload

"""SNTP (RFC 4330) over the NTPv4 packet of RFC 5905: timestamps, packets, checks, a responder.

Sans-IO.  The 48-byte header, network byte order::

    LI(2) VN(3) Mode(3) | Stratum | Poll | Precision
    Root Delay (16.16 s) | Root Dispersion (16.16 s) | Reference ID (4 bytes)
    Reference | Originate | Receive | Transmit   (64-bit timestamps)

A timestamp counts seconds since 1900-01-01 00:00 UTC in its upper 32 bits
and 2^-32 s in the lower 32.  The seconds field wraps on
2036-02-07 06:28:16 UTC (the start of NTP era 1), so a timestamp is read in
the era nearest a reference time, the local clock: that is right as long as
the two clocks are within 68 years of each other.

A client (:func:`check_reply`) trusts a reply only if it answers *this*
request: it echoes our transmit timestamp (a random nonce, not our clock) as
its originate timestamp.  A server (:class:`Responder`) answers only client
requests (mode 3) and never with more bytes than it received.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from netkit.protocols.ratelimit import RateLimiter

#: seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix's)
NTP_UNIX_OFFSET = 2_208_988_800
ERA_SECONDS = 1 << 32
FRACTION = 1 << 32
#: the first Unix second of NTP era 1: 2036-02-07T06:28:16Z
ERA1_UNIX = ERA_SECONDS - NTP_UNIX_OFFSET

PACKET_SIZE = 48
HEADER = struct.Struct("!BBbbII4sQQQQ")

MODE_CLIENT = 3
MODE_SERVER = 4
LEAP_NONE = 0
LEAP_UNSYNC = 3
STRATUM_KOD = 0
STRATUM_UNSYNC = 16
VERSION = 4
#: RFC 5905 MAXDIST: a server further than this from its reference is not worth a sample
MAX_ROOT_DISTANCE = 1.5
#: NTP's well-known port: a server's source port, never a loop
NTP_PORT = 123
LOWEST_REPLY_PORT = 1024

MODE_TEXT = {
    0: "reserved",
    1: "symmetric active",
    2: "symmetric passive",
    3: "client",
    4: "server",
    5: "broadcast",
    6: "control (ntpq)",
    7: "private (ntpdc)",
}


# --------------------------------------------------------------------------
# timestamps


def to_ntp(unix: float) -> int:
    """Unix time -> the 64-bit NTP timestamp (seconds and fraction, modulo one era)."""
    seconds = math.floor(unix)
    fraction = math.floor((unix - seconds) * FRACTION)
    if fraction >= FRACTION:  # unix a hair below a whole second
        seconds, fraction = seconds + 1, 0
    return ((seconds + NTP_UNIX_OFFSET) % ERA_SECONDS) << 32 | fraction


def ntp_era(unix: float) -> int:
    """The NTP era of a Unix time: 0 from 1900, 1 from 2036-02-07T06:28:16Z, ..."""
    return math.floor((unix + NTP_UNIX_OFFSET) / ERA_SECONDS)


def from_ntp(timestamp: int, reference: float) -> float:
    """The 64-bit timestamp -> Unix time, in the era nearest to *reference* (Unix seconds)."""
    if not 0 <= timestamp < 1 << 64:
        raise ValueError(f"{timestamp} is not a 64-bit NTP timestamp")
    base = timestamp / FRACTION - NTP_UNIX_OFFSET  # as if in era 0
    era = round((reference - base) / ERA_SECONDS)
    return base + era * ERA_SECONDS


def split(timestamp: int) -> tuple[int, int]:
    """(seconds, fraction): the two 32-bit halves of a timestamp."""
    return timestamp >> 32, timestamp & 0xFFFF_FFFF


def short_to_seconds(value: int) -> float:
    """The 32-bit 16.16 "short format" (root delay, root dispersion) -> seconds."""
    return value / 65536


def seconds_to_short(seconds: float) -> int:
    return max(0, min(0xFFFF_FFFF, math.ceil(seconds * 65536)))


def offset_delay(t1: float, t2: float, t3: float, t4: float) -> tuple[float, float]:
    """RFC 5905's clock offset and round-trip delay from the four timestamps.

    t1 client sent, t2 server received, t3 server sent, t4 client received.
    offset = ((t2 - t1) + (t3 - t4)) / 2, delay = (t4 - t1) - (t3 - t2).
    """
    return ((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2)


#: RFC 5905 PHI: how fast a clock's error may grow, 15 ppm
PHI = 15e-6


def root_distance(delay: float, round_trip: float, pkt: Packet) -> float:
    """The bound on a sample's offset error (RFC 5905 root distance, lambda).

    Half the path to the reference clock (our delay plus the server's root
    delay) plus the server's root dispersion, its precision, and what the
    clocks may drift during the round trip.
    """
    return (
        (delay + short_to_seconds(pkt.root_delay)) / 2
        + short_to_seconds(pkt.root_dispersion)
        + 2.0**pkt.precision
        + PHI * round_trip
    )


# --------------------------------------------------------------------------
# packets


@dataclass(frozen=True)
class Packet:
    leap: int = LEAP_NONE
    version: int = VERSION
    mode: int = MODE_CLIENT
    stratum: int = 0
    poll: int = 0
    precision: int = 0
    root_delay: int = 0  # 16.16 seconds
    root_dispersion: int = 0  # 16.16 seconds
    refid: bytes = b"\0\0\0\0"
    reference: int = 0
    originate: int = 0
    receive: int = 0
    transmit: int = 0

    def encode(self) -> bytes:
        first = (self.leap & 3) << 6 | (self.version & 7) << 3 | (self.mode & 7)
        return HEADER.pack(
            first,
            self.stratum,
            self.poll,
            self.precision,
            self.root_delay,
            self.root_dispersion,
            self.refid,
            self.reference,
            self.originate,
            self.receive,
            self.transmit,
        )

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        """The first 48 bytes -> a Packet; ValueError when there are fewer."""
        if len(data) < PACKET_SIZE:
            raise ValueError(f"truncated: {len(data)} bytes, an NTP packet has at least 48")
        first, stratum, poll, precision, rdelay, rdisp, refid, ref, org, rec, xmt = (
            HEADER.unpack_from(data)
        )
        return cls(
            leap=first >> 6,
            version=first >> 3 & 7,
            mode=first & 7,
            stratum=stratum,
            poll=poll,
            precision=precision,
            root_delay=rdelay,
            root_dispersion=rdisp,
            refid=refid,
            reference=ref,
            originate=org,
            receive=rec,
            transmit=xmt,
        )


def request(nonce: int, *, version: int = VERSION) -> bytes:
    """A client's mode-3 request whose transmit timestamp is *nonce* (all else zero)."""
    return Packet(leap=LEAP_NONE, version=version, mode=MODE_CLIENT, transmit=nonce).encode()


def refid_text(stratum: int, refid: bytes) -> str:
    """How to show a reference id: a code (``LOCL``, ``GPS``, ``RATE``) or an IPv4 address.

    Stratum 0 (kiss codes), 1 (reference clocks) and 16 carry ASCII; from
    stratum 2 it is the upstream server's IPv4 address (or a hash of its IPv6
    one), unless all four bytes are capitals or digits, as ``--refid LOCL``
    sends and as servers without an upstream send.
    """
    code = refid.rstrip(b"\0")
    is_code = bool(code) and all(65 <= b <= 90 or 48 <= b <= 57 for b in code)
    if stratum <= 1 or stratum >= STRATUM_UNSYNC or is_code:
        if is_code or (code and all(32 < b < 127 for b in code)):
            return code.decode("ascii")
        return refid.hex()
    return ".".join(str(b) for b in refid)


def parse_refid(text: str) -> bytes:
    """``--refid``: up to 4 ASCII letters/digits (e.g. LOCL, GPS) or a dotted IPv4 address."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        return bytes(int(p) for p in parts)
    if not 1 <= len(text) <= 4 or not all(c.isascii() and c.isalnum() for c in text):
        raise ValueError(
            f"reference id {text!r}: give 1 to 4 ASCII letters or digits, or an IPv4 address"
        )
    return text.upper().encode("ascii").ljust(4, b"\0")


# --------------------------------------------------------------------------
# the client's checks


class ReplyRejected(ValueError):
    """A reply that is not a usable answer; str() is the reason.

    ``ignore`` is True when the packet cannot be shown to answer our request
    (wrong originate, wrong source): a client keeps waiting for the real one.
    """

    def __init__(self, reason: str, *, ignore: bool = False) -> None:
        super().__init__(reason)
        self.ignore = ignore


class KissOfDeath(ReplyRejected):
    """Stratum 0: the server tells the client something (RFC 5905 7.4) in its reference id."""

    def __init__(self, code: str) -> None:
        self.code = code
        if code == "RATE":
            why = "the server asks us to send less often"
        elif code in ("DENY", "RSTR"):
            why = "the server refuses to serve us: do not ask it again"
        else:
            why = "the server will not answer this request"
        super().__init__(f"kiss-o'-death {code}: {why}")

    @property
    def fatal(self) -> bool:
        return self.code != "RATE"


def check_reply(data: bytes, nonce: int) -> Packet:
    """Accept *data* as the answer to the request with transmit timestamp *nonce*, or raise.

    Every rule, in order:

    - at least 48 bytes: a shorter datagram is not an NTP packet;
    - mode 4 (server): a mode-3 packet is a request, perhaps our own reflected;
    - version 3 or 4: 1 and 2 are obsolete, 0 and 5-7 are not NTP;
    - originate timestamp == our nonce: otherwise it answers someone else's
      or an earlier request (a duplicate, a replay, a spoof); ignored, so the
      real answer can still arrive;
    - stratum 0 is a kiss-o'-death: DENY/RSTR stop, RATE backs off;
    - stratum 1-15: 16 means unsynchronised, more is not defined;
    - leap indicator not 3: the server says its clock is not synchronised;
    - receive and transmit timestamps not 0: a server that did not fill them in
      has no time to give;
    - root distance (root delay / 2 + root dispersion) at most 1.5 s (MAXDIST).
    """
    try:
        pkt = Packet.decode(data)
    except ValueError as exc:
        raise ReplyRejected(f"{exc}") from None
    if pkt.mode != MODE_SERVER:
        raise ReplyRejected(
            f"mode {pkt.mode} ({MODE_TEXT[pkt.mode]}) packet: a server answers with mode 4"
            + (" (this is a request, perhaps our own reflected)" if pkt.mode == MODE_CLIENT else "")
        )
    if pkt.version not in (3, 4):
        raise ReplyRejected(f"NTP version {pkt.version}: netkit accepts versions 3 and 4")
    if pkt.originate != nonce:
        what = "0" if pkt.originate == 0 else f"{pkt.originate:#018x}"
        raise ReplyRejected(
            f"originate timestamp {what} is not our transmit timestamp {nonce:#018x}: "
            "not an answer to this request (bogus, duplicate or replayed)",
            ignore=True,
        )
    if pkt.stratum == STRATUM_KOD:
        raise KissOfDeath(refid_text(0, pkt.refid) or pkt.refid.hex())
    if pkt.stratum >= STRATUM_UNSYNC:
        raise ReplyRejected(
            f"stratum {pkt.stratum}: the server says it is not synchronised to any clock"
            if pkt.stratum == STRATUM_UNSYNC
            else f"stratum {pkt.stratum}: not defined (1-15 are servers, 16 unsynchronised)"
        )
    if pkt.leap == LEAP_UNSYNC:
        raise ReplyRejected("leap indicator 3: the server says its clock is not synchronised")
    if pkt.transmit == 0 or pkt.receive == 0:
        which = "transmit" if pkt.transmit == 0 else "receive"
        raise ReplyRejected(f"{which} timestamp 0: the server gave no time")
    distance = short_to_seconds(pkt.root_delay) / 2 + short_to_seconds(pkt.root_dispersion)
    if distance > MAX_ROOT_DISTANCE:
        raise ReplyRejected(
            f"root distance {distance:.3f} s: further than {MAX_ROOT_DISTANCE} s from its "
            "reference clock, too far to be worth a sample"
        )
    return pkt


# --------------------------------------------------------------------------
# the server


@dataclass(frozen=True)
class Answer:
    """What the responder does with one datagram: send ``reply`` (bytes) or drop it (``reason``)."""

    reply: bytes | None
    kind: str  # "reply", "kod", or the drop reason's key
    reason: str = ""
    packet: Packet | None = None


DROP_REASONS = {
    "loop": f"source port below {LOWEST_REPLY_PORT} and not {NTP_PORT} "
    "(another server: a reply could loop)",
    "short": "shorter than 48 bytes: not an NTP request",
    "mode": "not a client request (mode 3); modes 6 and 7 are never answered",
    "version": "NTP version not 1-4",
    "rate": "source over its --rate limit (a kiss-o'-death RATE was sent recently)",
}


class Responder:
    """An SNTP server's decisions: request bytes, source port, clock readings -> :class:`Answer`.

    By default it says what it is, an unsynchronised clock (leap indicator 3,
    stratum 16), which careful clients refuse.  With *stratum* (1-15) it
    claims that stratum and *refid*, nothing more.  With *rate* each source
    gets at most *rate* answers a second; beyond it one kiss-o'-death RATE a
    second, then nothing.
    """

    def __init__(
        self,
        *,
        stratum: int | None = None,
        refid: bytes | None = None,
        precision: int = -20,
        rate: float | None = None,
        started: float = 0.0,
    ) -> None:
        if stratum is not None and not 1 <= stratum <= 15:
            raise ValueError("stratum must be 1-15 (16 means unsynchronised, the default)")
        self.synchronised = stratum is not None
        self.stratum = stratum if stratum is not None else STRATUM_UNSYNC
        self.refid = refid if refid is not None else (b"LOCL" if self.synchronised else b"INIT")
        self.precision = precision
        self.limiter = RateLimiter(rate) if rate is not None else None
        self.kod_limiter = RateLimiter(1.0) if rate is not None else None
        self.started = started

    def respond(
        self,
        data: bytes,
        source_port: int,
        source: object,
        now: float,
        receive: float,
        transmit: float,
    ) -> Answer:
        """Decide on one datagram.

        *source* keys the rate limit, *now* is a monotonic reading for it,
        *receive* and *transmit* are the wall clock (Unix time) on arrival and
        when the reply is built.
        """
        if source_port < LOWEST_REPLY_PORT and source_port != NTP_PORT:
            return Answer(None, "loop", DROP_REASONS["loop"])
        if len(data) < PACKET_SIZE:
            return Answer(None, "short", DROP_REASONS["short"])
        req = Packet.decode(data)
        if req.mode != MODE_CLIENT:
            return Answer(None, "mode", DROP_REASONS["mode"] + f": got mode {req.mode}")
        if not 1 <= req.version <= 4:
            return Answer(None, "version", DROP_REASONS["version"] + f": got {req.version}")
        if self.limiter is not None and not self.limiter.allow(source, now):
            assert self.kod_limiter is not None
            if not self.kod_limiter.allow(source, now):
                return Answer(None, "rate", DROP_REASONS["rate"])
            kod = Packet(
                leap=LEAP_UNSYNC,
                version=req.version,
                mode=MODE_SERVER,
                stratum=STRATUM_KOD,
                poll=req.poll,
                precision=self.precision,
                refid=b"RATE",
                originate=req.transmit,
                receive=to_ntp(receive),
                transmit=to_ntp(transmit),
            )
            return Answer(kod.encode(), "kod", "kiss-o'-death RATE: over the --rate limit", kod)
        reply = Packet(
            leap=LEAP_NONE if self.synchronised else LEAP_UNSYNC,
            version=req.version,
            mode=MODE_SERVER,
            stratum=self.stratum,
            poll=req.poll,
            precision=self.precision,
            root_delay=0,
            root_dispersion=seconds_to_short(2.0**self.precision) if self.synchronised else 0,
            refid=self.refid,
            reference=to_ntp(self.started) if self.synchronised else 0,
            originate=req.transmit,
            receive=to_ntp(receive),
            transmit=to_ntp(transmit),
        )
        return Answer(reply.encode(), "reply", packet=reply)

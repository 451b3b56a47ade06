"""Mr. Creosote's wire format: a message as UDP datagrams, and putting it back together.

A message that fits in one datagram is sent as it is: plain bytes, so any
UDP listener (``nc -u -l``, the lecture's ``bucket``) shows readable text.
A longer message is cut into chunks, each datagram starting with a
fixed-width ASCII header::

    [creosote 1f2e3d4c 00002/00003] ...payload...
    |         |        |     +-- total chunks (5 decimal digits)
    |         |        +-------- this chunk's number, 1-based
    |         +----------------- message id: 8 lower-case hex digits
    +--------------------------- literal "[creosote ", then "] " after the counts

The header is 32 bytes; a datagram is at most ``chunk_size`` bytes, header
included.  Chunks are cut only between UTF-8 characters, so each chunk is
readable on its own.  A single-datagram message that itself starts like a
header is sent as chunk ``00001/00001`` so that it is never misread.

:class:`Reassembler` is the receiving side's state machine: it collects the
chunks of each (source, id) and returns the message once all have arrived,
or an :class:`Incomplete` one when chunks stay missing past a timeout.

The sending half (:func:`split`, :func:`header` and the limits a sender needs)
is :mod:`netkit.protocols.creosote_chunks`, so a sender loads no parser; it is
re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netkit.protocols.creosote_chunks import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PORT,
    HEADER_LEN,
    MAGIC,
    MAX_CHUNKS,
    MAX_DATAGRAM,
    header,
    min_chunk_size,
    split,
)

if TYPE_CHECKING:  # loaded where a chunk is refused: a sender (spew) never needs it
    from netkit.protocols.records import Refused

MAX_MESSAGE = 16 << 20  # bytes a chunk header may claim: total chunks x this chunk's size
MISSING_LISTED = 100  # missing chunk numbers listed in an Incomplete (plus a count)
MISSING_RANGES = 32  # ranges of missing chunks listed
_HEADER_RE = re.compile(rb"\[creosote ([0-9a-f]{8}) ([0-9]{5})/([0-9]{5})\] ")

# the sending half lives in netkit.protocols.creosote_chunks (all a sender loads);
# re-exported here, where the format is described
__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PORT",
    "HEADER_LEN",
    "MAGIC",
    "MAX_CHUNKS",
    "MAX_DATAGRAM",
    "MAX_MESSAGE",
    "MISSING_LISTED",
    "MISSING_RANGES",
    "Chunk",
    "Complete",
    "Incomplete",
    "Reassembler",
    "header",
    "min_chunk_size",
    "missing_chunks",
    "parse",
    "split",
]


@dataclass(frozen=True)
class Chunk:
    msg_id: str
    index: int
    total: int
    payload: bytes


def parse(datagram: bytes) -> Chunk | None:
    """The chunk a datagram carries, or ``None`` for a plain (single-datagram) message."""
    if not datagram.startswith(MAGIC):
        return None
    m = _HEADER_RE.match(datagram)
    if m is None:
        return None
    index, total = int(m.group(2)), int(m.group(3))
    if not 1 <= index <= total:
        return None
    return Chunk(m.group(1).decode("ascii"), index, total, datagram[HEADER_LEN:])


@dataclass(frozen=True)
class Complete:
    """A whole message: one plain datagram or every chunk of a chunked one."""

    source: Hashable
    data: bytes
    chunks: int  # 1 for a plain datagram


@dataclass(frozen=True)
class Incomplete:
    """A chunked message given up on: ``data`` is the chunks that came, in order."""

    source: Hashable
    msg_id: str
    data: bytes
    received: int
    total: int
    missing: list[int]  # the first MISSING_LISTED missing chunk numbers
    reason: str  # "timeout", "stopped", "evicted"
    missing_count: int = 0  # how many are missing in all
    missing_ranges: list[tuple[int, int]] = field(default_factory=list)  # first/last, capped
    dialect: str = "netkit"  # whose chunks: "netkit" or "gelf"


def missing_chunks(got: list[int], total: int) -> tuple[list[int], list[tuple[int, int]]]:
    """The first missing numbers and ranges of 1..*total* not in sorted *got*.

    Work and output are O(len(got)) plus the caps, whatever *total* claims.
    """
    listed: list[int] = []
    ranges: list[tuple[int, int]] = []
    prev = 0
    for n in [*got, total + 1]:
        if n > prev + 1:
            first, last = prev + 1, n - 1
            if len(ranges) < MISSING_RANGES:
                ranges.append((first, last))
            take = min(last, first + MISSING_LISTED - len(listed) - 1)
            listed.extend(range(first, take + 1))
        prev = n
        if len(ranges) >= MISSING_RANGES and len(listed) >= MISSING_LISTED:
            break
    return listed, ranges


@dataclass
class _Pending:
    total: int
    last_seen: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Collects chunks per (source, message id); sans-IO, the caller passes the time.

    *timeout*: seconds without a new chunk before a message is reported
    incomplete.  *max_pending* messages and *max_bytes* buffered in all
    bound the memory a sender can make the listener hold; past them the
    oldest message is given up (reason ``"evicted"``).
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_pending: int = 1024,
        max_bytes: int = 64 << 20,
        max_message: int = MAX_MESSAGE,
        dialect: str = "netkit",
    ) -> None:
        self.timeout = timeout
        self.dialect = dialect
        self.max_message = max_message
        self.refused = 0
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self._pending: dict[tuple[Hashable, str], _Pending] = {}
        self._bytes = 0
        self.duplicates = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(
        self, source: Hashable, datagram: bytes, now: float
    ) -> list[Complete | Incomplete | Refused]:
        """Take one datagram; return what it completed (and anything evicted for room)."""
        chunk = parse(datagram)
        if chunk is None:
            return [Complete(source, datagram, 1)]
        if chunk.total == 1:
            return [Complete(source, chunk.payload, 1)]
        return self.add(source, chunk.msg_id, chunk.index, chunk.total, chunk.payload, now)

    def add(
        self, source: Hashable, msg_id: str, index: int, total: int, payload: bytes, now: float
    ) -> list[Complete | Incomplete | Refused]:
        """Take chunk *index* (1-based) of *total* of message *msg_id* from *source*.

        A header may claim only what its own chunk makes plausible: *total*
        chunks of this chunk's size must fit in ``max_message`` bytes, so a
        33-byte datagram cannot make the listener expect 99,999 chunks.
        """
        if total * max(len(payload), 1) > self.max_message:
            from netkit.protocols.records import Refused

            self.refused += 1
            return [
                Refused(
                    self.dialect,
                    f"chunk {index}/{total} of {len(payload)} bytes claims a message of "
                    f"{total * max(len(payload), 1)} bytes (more than {self.max_message})",
                )
            ]
        key = (source, msg_id)
        out: list[Complete | Incomplete | Refused] = []
        entry = self._pending.get(key)
        if entry is not None and entry.total != total:
            # the id was reused for another message: give up the old one
            out.append(self._give_up(key, "evicted"))
            entry = None
        if entry is None:
            entry = _Pending(total, now)
            self._pending[key] = entry
        if index in entry.chunks:
            self.duplicates += 1
            return out
        entry.chunks[index] = payload
        entry.size += len(payload)
        entry.last_seen = now
        self._bytes += len(payload)
        if len(entry.chunks) == entry.total:
            del self._pending[key]
            self._bytes -= entry.size
            data = b"".join(entry.chunks[i] for i in range(1, entry.total + 1))
            out.append(Complete(source, data, entry.total))
            return out
        # over a limit: give up the oldest messages (possibly this one)
        while self._pending and (
            len(self._pending) > self.max_pending or self._bytes > self.max_bytes
        ):
            oldest = min(self._pending, key=lambda k: self._pending[k].last_seen)
            out.append(self._give_up(oldest, "evicted"))
        return out

    def _give_up(self, key: tuple[Hashable, str], reason: str) -> Incomplete:
        entry = self._pending.pop(key)
        self._bytes -= entry.size
        got = sorted(entry.chunks)
        listed, ranges = missing_chunks(got, entry.total)
        return Incomplete(
            source=key[0],
            msg_id=key[1],
            data=b"".join(entry.chunks[i] for i in got),
            received=len(got),
            total=entry.total,
            missing=listed,
            reason=reason,
            missing_count=entry.total - len(got),
            missing_ranges=ranges,
            dialect=self.dialect,
        )

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do, or ``None``."""
        if not self._pending:
            return None
        return min(e.last_seen for e in self._pending.values()) + self.timeout

    def expire(self, now: float) -> list[Incomplete]:
        """Give up every message that has had no new chunk for *timeout* seconds."""
        late = [k for k, e in self._pending.items() if now - e.last_seen >= self.timeout]
        return [self._give_up(k, "timeout") for k in late]

    def flush(self, reason: str = "stopped") -> list[Incomplete]:
        """Give up everything still pending (the listener is stopping)."""
        return [self._give_up(k, reason) for k in list(self._pending)]

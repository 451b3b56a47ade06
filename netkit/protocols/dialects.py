"""Which dialect a datagram or a TCP connection speaks, and its records.

UDP, per datagram (after netkit's own chunks are put back together by
:class:`netkit.protocols.creosote.Reassembler`):

* ``pickle``: a 4-byte length equal to the rest and a pickle
  (``logging.handlers.DatagramHandler``), decoded by
  :mod:`netkit.protocols.safepickle` (never a global, never code);
* ``gelf``: GELF chunks (magic ``1e 0f``, see :class:`GelfCollector`),
  zlib or gzip data, or a JSON object with ``short_message``;
* ``json``: JSON lines, ``{"level": ..., "logger": ..., "message": ...}``;
* ``rfc5424`` / ``rfc3164``: syslog, a trailing NUL or newline stripped;
* ``netkit`` (a chunked message, or a single datagram from netkit) and
  ``spew``: raw text.  The lecture's ``spew()`` cuts a message into
  ``BUFSIZE`` pieces with no header; :class:`SpewJoiner` shows
  consecutive pieces as one message (the heuristic is documented there).

TCP, per connection (:class:`StreamDecoder`): the first byte decides: NUL
is ``SocketHandler``'s 4-byte length (pickles), a digit is RFC 6587 octet
counting (syslog), anything else is records ended by LF or NUL (syslog,
JSON lines, GELF over TCP, plain lines).
"""

from __future__ import annotations

import codecs
import json
import re
import struct
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from netkit.protocols import creosote, gelf, safepickle, syslog
from netkit.protocols.records import (
    Record,
    Refused,
    decoded_record,
    level_from_severity,
    parse_level,
)

MAX_RECORD = 1 << 20  # bytes of one record on TCP (one line, one frame)


# --------------------------------------------------------------------------
# one datagram or one frame


def _json_record(obj: Any) -> Record | None:
    if not isinstance(obj, dict):
        return None
    message = obj.get("message", obj.get("msg"))
    if not isinstance(message, str):
        return None
    level: int | None = None
    raw = obj.get("level", obj.get("levelname", obj.get("levelno")))
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 100:
        level = raw
    elif isinstance(raw, str):
        try:
            level = parse_level(raw)
        except ValueError:
            level = None
    logger = obj.get("logger", obj.get("name", obj.get("logger_name")))
    fields: dict[str, Any] = {}
    exc = obj.get("exc_text", obj.get("exception", obj.get("exc_info")))
    text = message
    if isinstance(exc, str) and exc:
        fields["exc_text"] = exc
        text = f"{text}\n{exc}"
    skip = {"message", "msg", "level", "levelname", "levelno", "logger", "name", "logger_name"}
    skip |= {"exc_text", "exception", "exc_info"}
    for key, value in obj.items():
        if key not in skip and isinstance(value, (str, int, float, bool)):
            fields[key] = value
    return decoded_record(
        "json", text, level=level, logger=logger, host=obj.get("host"), fields=fields
    )


def _from_json(data: bytes) -> list[Record | Refused] | None:
    """JSON lines (or a GELF object); ``None`` when it is not JSON at all."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    out: list[Record | Refused] = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return None if not out else [*out, Refused("json", "a line that is not JSON")]
        if isinstance(obj, dict) and "short_message" in obj:
            out.append(gelf.from_object(obj))
            continue
        record = _json_record(obj)
        if record is None:
            if not out and len(lines) == 1:
                return None  # JSON, but not a record: shown as text
            out.append(Refused("json", "a JSON line without a message"))
        else:
            out.append(record)
    return out or None


def _from_syslog(data: bytes) -> Record | None:
    parsed = syslog.parse(data)
    if parsed is None:
        return None
    fields: dict[str, Any] = {"facility": parsed.facility_name}
    for key in ("procid", "msgid", "structured_data", "timestamp"):
        value = getattr(parsed, key)
        if value is not None:
            fields[key] = value
    return Record(
        dialect=parsed.format,
        message=parsed.message,
        level=level_from_severity(parsed.severity),
        logger=parsed.app,
        host=parsed.host,
        app=parsed.app,
        fields=fields,
    )


def strip_terminator(data: bytes) -> bytes:
    """A syslog record without the NUL (``SysLogHandler``) and newline senders append."""
    return data.rstrip(b"\x00\n")


def decode_datagram(data: bytes) -> list[Record | Refused] | None:
    """The records one whole datagram (or frame) carries; ``None`` for plain text."""
    if safepickle.looks_like(data):
        return [safepickle.decode_frame(data[4:])]
    if gelf.looks_like(data):
        got = gelf.decode(data, chunked=False)
        if got is not None:
            return [got]
    if data[:1] == b"{":
        return _from_json(data)
    if data[:1] == b"<":
        clean = strip_terminator(data)
        record = _from_syslog(clean)
        if record is not None:
            return [record]
    return None


# --------------------------------------------------------------------------
# GELF chunks


class GelfCollector:
    """GELF chunks put back together, with the bounds of netkit's own reassembler."""

    def __init__(self, *, timeout: float = 5.0, max_pending: int = 256) -> None:
        self.reassembler = creosote.Reassembler(
            timeout=timeout,
            max_pending=max_pending,
            max_bytes=16 << 20,
            max_message=gelf.MAX_CHUNKS * creosote.MAX_DATAGRAM,
            dialect="gelf",
        )

    def feed(
        self, source: Hashable, chunk: gelf.GelfChunk, now: float
    ) -> list[creosote.Complete | creosote.Incomplete | Refused]:
        return self.reassembler.add(
            source, chunk.msg_id, chunk.index, chunk.total, chunk.payload, now
        )


# --------------------------------------------------------------------------
# the lecture's spew()


@dataclass
class _Held:
    parts: list[bytes]
    size: int  # the first piece's size: every piece but the last has it
    last_seen: float


def _textlike(data: bytes, *, cut_start: bool) -> bool:
    """UTF-8 text without NUL, perhaps cut mid-character at the end (and at the start)."""
    if b"\x00" in data:
        return False
    if cut_start:
        skip = 0
        while skip < 3 and skip < len(data) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
        data = data[skip:]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


SPEW_SIZES = frozenset(1 << n for n in range(10, 17))  # BUFSIZE: 1024 ... 65536


class SpewJoiner:
    """Join the lecture's raw ``spew()`` pieces back into one message.

    ``spew()`` sends ``msg[:BUFSIZE]`` repeatedly from one socket.  The
    heuristic: a plain datagram whose size is a power of two from 1024 to
    65536 (a BUFSIZE) and that is text (UTF-8, perhaps cut mid-character,
    no NUL) may be the first piece and is held; the next text datagram from
    the same address and port within *gap* seconds continues it if it has
    the same size, and ends it if it is shorter; a longer one, or *gap*
    seconds without a piece, ends it too.  Anything else is a message of its
    own at once.  ``--raw`` turns this off.  Messages are bounded by
    *max_bytes* (then shown as they are).
    """

    def __init__(self, *, gap: float = 0.2, max_bytes: int = 1 << 20) -> None:
        self.gap = gap
        self.max_bytes = max_bytes
        self._held: dict[Hashable, _Held] = {}

    def feed(self, source: Hashable, data: bytes, now: float) -> list[tuple[Hashable, bytes, int]]:
        """Messages that are now whole: (source, data, pieces)."""
        out: list[tuple[Hashable, bytes, int]] = []
        held = self._held.get(source)
        if held is not None:
            late = now - held.last_seen > self.gap
            if late or len(data) > held.size or not _textlike(data, cut_start=True):
                out.append(self._release(source))
                held = None
            else:
                held.parts.append(data)
                held.last_seen = now
                total = len(held.parts) * held.size
                if len(data) < held.size or total >= self.max_bytes:
                    out.append(self._release(source))
                return out
        if len(data) in SPEW_SIZES and _textlike(data, cut_start=False):
            self._held[source] = _Held([data], len(data), now)
        else:
            out.append((source, data, 1))
        return out

    def _release(self, source: Hashable) -> tuple[Hashable, bytes, int]:
        held = self._held.pop(source)
        return source, b"".join(held.parts), len(held.parts)

    def release(self, source: Hashable) -> list[tuple[Hashable, bytes, int]]:
        """What is held for *source*, now (a datagram of another dialect came from it)."""
        return [self._release(source)] if source in self._held else []

    def next_deadline(self) -> float | None:
        if not self._held:
            return None
        return min(h.last_seen for h in self._held.values()) + self.gap

    def expire(self, now: float) -> list[tuple[Hashable, bytes, int]]:
        late = [s for s, h in self._held.items() if now - h.last_seen >= self.gap]
        return [self._release(s) for s in late]

    def flush(self) -> list[tuple[Hashable, bytes, int]]:
        return [self._release(s) for s in list(self._held)]


# --------------------------------------------------------------------------
# all of it, per datagram


@dataclass(frozen=True)
class Accepted:
    """A record to show, log and forward."""

    source: Hashable
    record: Record
    chunks: int = 1  # datagrams it came in
    raw: bytes | None = None  # syslog: the datagram as it came (NUL stripped)


@dataclass(frozen=True)
class RefusedFrom:
    source: Hashable
    refused: Refused


Collected = Accepted | creosote.Incomplete | RefusedFrom


def _one(
    source: Hashable, got: Record | Refused, chunks: int, raw: bytes | None = None
) -> Collected:
    if isinstance(got, Refused):
        return RefusedFrom(source, got)
    return Accepted(source, got, chunks, raw)


class DatagramCollector:
    """Every UDP dialect, per datagram; sans-IO (the caller passes the time).

    netkit's chunks and GELF's are put back together, the lecture's raw
    ``spew()`` pieces joined (unless *raw*), everything else decoded on its
    own.  Plain text is dialect ``text`` (one datagram), ``spew`` (joined
    pieces) or ``netkit`` (a chunked netkit message).
    """

    def __init__(self, *, timeout: float = 5.0, raw: bool = False, spew_gap: float = 0.2):
        self.reassembler = creosote.Reassembler(timeout=timeout)
        self.gelf = GelfCollector(timeout=timeout)
        self.joiner = None if raw else SpewJoiner(gap=spew_gap)

    def feed(self, source: Hashable, data: bytes, now: float) -> list[Collected]:
        out: list[Collected] = []
        chunk = gelf.parse_chunk(data)
        if isinstance(chunk, Refused):
            return [RefusedFrom(source, chunk)]
        if chunk is not None:
            for got in self.gelf.feed(source, chunk, now):
                if isinstance(got, creosote.Complete):
                    whole = gelf.decode(got.data) or Refused("gelf", "not GELF")
                    out.append(_one(source, whole, got.chunks))
                else:
                    out.append(self._wrap(source, got))
            return out
        for got in self.reassembler.feed(source, data, now):
            if isinstance(got, creosote.Complete):
                out += self._whole(source, got.data, got.chunks, now)
            else:
                out.append(self._wrap(source, got))
        return out

    @staticmethod
    def _wrap(source: Hashable, got: creosote.Incomplete | Refused) -> Collected:
        return RefusedFrom(source, got) if isinstance(got, Refused) else got

    def _whole(self, source: Hashable, data: bytes, chunks: int, now: float) -> list[Collected]:
        records = decode_datagram(data)
        out: list[Collected] = []
        if records is not None:
            if self.joiner is not None:  # keep one source's order
                out += self._text(self.joiner.release(source))
            raw = strip_terminator(data) if data[:1] == b"<" else None
            return out + [_one(source, r, chunks, raw) for r in records]
        if chunks > 1 or self.joiner is None:
            return [Accepted(source, Record("netkit" if chunks > 1 else "text", data), chunks)]
        return self._text(self.joiner.feed(source, data, now))

    def _text(self, pieces: list[tuple[Hashable, bytes, int]]) -> list[Collected]:
        return [
            Accepted(src, Record("spew" if n > 1 else "text", data), n) for src, data, n in pieces
        ]

    def next_deadline(self) -> float | None:
        times = [self.reassembler.next_deadline(), self.gelf.reassembler.next_deadline()]
        if self.joiner is not None:
            times.append(self.joiner.next_deadline())
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def expire(self, now: float) -> list[Collected]:
        out: list[Collected] = []
        if self.joiner is not None:
            out += self._text(self.joiner.expire(now))
        out += self.reassembler.expire(now)
        out += self.gelf.reassembler.expire(now)
        return out

    def flush(self, reason: str = "stopped") -> list[Collected]:
        out: list[Collected] = []
        if self.joiner is not None:
            out += self._text(self.joiner.flush())
        out += self.reassembler.flush(reason)
        out += self.gelf.reassembler.flush(reason)
        return out


# --------------------------------------------------------------------------
# TCP


_PRI_START = re.compile(rb"<(?:[0-9]|[1-9][0-9]|1[0-8][0-9]|19[01])>")


class StreamDecoder:
    """The records of one TCP connection from *source*; sans-IO (feed bytes, get records).

    A record longer than *max_record* is refused and ends the connection
    (:attr:`failed` is set: the caller closes it), as does a malformed
    frame: what follows cannot be trusted to be in step.  Plain text lines
    are records of dialect ``text``.
    """

    def __init__(self, source: Hashable = None, *, max_record: int = MAX_RECORD) -> None:
        self.source = source
        self.max_record = max_record
        self.framing: str | None = None  # "pickle", "octet", "line"
        self.failed: str | None = None
        self._buf = bytearray()
        self._terminated = False  # a LF or NUL has ended a record on this connection

    @property
    def unframed(self) -> bool:
        """Syslog records with no end mark are waiting (``SysLogHandler``, ``append_nul`` off).

        Each such record ends where the next ``<PRI>`` starts; the last one
        only at EOF or after a pause (:meth:`flush`).
        """
        return (
            self.framing == "line"
            and not self._terminated
            and _PRI_START.match(self._buf) is not None
        )

    def flush(self) -> list[Collected]:
        """The connection paused: an unframed syslog record waiting is whole."""
        if not self.unframed or self.failed is not None:
            return []
        rest = bytes(self._buf)
        self._buf.clear()
        return [self._record(rest)]

    def feed(self, data: bytes) -> list[Collected]:
        """What *data* completed: accepted records, refusals."""
        if self.failed is not None:
            return []
        self._buf += data
        out: list[Collected] = []
        while self._buf and self.failed is None:
            if self.framing is None:
                first = self._buf[0]
                self.framing = (
                    "pickle" if first == 0 else "octet" if 0x31 <= first <= 0x39 else "line"
                )
            step = getattr(self, "_" + self.framing)()
            if step is None:
                break
            out.append(step)
        return out

    def eof(self) -> list[Collected]:
        """The connection ended: an unterminated last line is a record; a cut frame is not."""
        if self.failed is not None or not self._buf:
            return []
        rest = bytes(self._buf)
        self._buf.clear()
        if self.framing == "line":
            return [self._record(rest)]
        why = f"connection ended inside a frame ({len(rest)} bytes of it came)"
        return [RefusedFrom(self.source, Refused(self.framing or "tcp", why))]

    def _fail(self, dialect: str, reason: str) -> Collected:
        self.failed = reason
        self._buf.clear()
        return RefusedFrom(self.source, Refused(dialect, reason))

    def _pickle(self) -> Collected | None:
        if len(self._buf) < 4:
            return None
        (length,) = struct.unpack(">L", self._buf[:4])
        if length > self.max_record:
            return self._fail("pickle", f"frame of {length} bytes (limit {self.max_record})")
        if len(self._buf) < 4 + length:
            return None
        payload = bytes(self._buf[4 : 4 + length])
        del self._buf[: 4 + length]
        return _one(self.source, safepickle.decode_frame(payload), 1)

    def _octet(self) -> Collected | None:
        digits = len(self._buf[:12]) - len(self._buf[:12].lstrip(b"0123456789"))
        if digits > 10 or (digits == len(self._buf) and digits == 12):
            return self._fail(
                "rfc6587", f"an octet count of more than 10 digits (limit {self.max_record})"
            )
        if digits == len(self._buf):
            return None  # the count so far
        if self._buf[digits : digits + 1] != b" ":
            return self._fail("rfc6587", "octet count expected (digits, then a space)")
        length = int(self._buf[:digits])
        if length > self.max_record:
            return self._fail("rfc6587", f"octet count {length} (limit {self.max_record})")
        end = digits + 1 + length
        if len(self._buf) < end:
            return None
        frame = bytes(self._buf[digits + 1 : end])
        del self._buf[:end]
        return self._record(frame)

    def _line(self) -> Collected | None:
        while True:
            limit = self.max_record + 1
            ends = [self._buf.find(b"\n", 0, limit), self._buf.find(b"\0", 0, limit)]
            found = [i for i in ends if i >= 0]
            if not found and self.unframed:
                nxt = _PRI_START.search(self._buf, 1, min(len(self._buf), self.max_record + 1))
                if nxt is not None:  # records without an end mark: the next <PRI> ends one
                    frame = bytes(self._buf[: nxt.start()])
                    del self._buf[: nxt.start()]
                    return self._record(frame)
            if not found:
                if len(self._buf) > self.max_record:
                    return self._fail("tcp", f"a record longer than {self.max_record} bytes")
                return None
            cut = min(found)
            self._terminated = True
            line = bytes(self._buf[:cut])
            del self._buf[: cut + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                return self._record(line)
            if not self._buf:
                return None

    def _record(self, frame: bytes) -> Collected:
        records = decode_datagram(frame)
        if records is None:
            return Accepted(self.source, Record("text", frame))
        raw = strip_terminator(frame) if frame[:1] == b"<" else None
        return _one(self.source, records[0], 1, raw)

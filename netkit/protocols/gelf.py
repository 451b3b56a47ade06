"""GELF 1.1 (Graylog Extended Log Format) over UDP: plain, zlib, gzip and chunked.

A GELF datagram is a JSON object (``version``, ``host``, ``short_message``,
optional ``full_message``, ``timestamp``, ``level`` as a syslog severity,
``_name`` additional fields), possibly zlib- or gzip-compressed.  A long
one is chunked: each datagram starts with the magic ``1e 0f``, an 8-byte
message id, a 0-based sequence number and the count (at most 128); the
chunks' payloads joined are the (compressed) message.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from netkit.protocols.records import Record, Refused, decoded_record, level_from_severity

MAGIC = b"\x1e\x0f"
CHUNK_HEADER = 12
MAX_CHUNKS = 128
MAX_MESSAGE = 1 << 20  # bytes of one decompressed message


@dataclass(frozen=True)
class GelfChunk:
    msg_id: str  # 16 hex digits
    index: int  # 1-based (the wire carries 0-based)
    total: int
    payload: bytes


def parse_chunk(datagram: bytes) -> GelfChunk | Refused | None:
    """The chunk a datagram carries, ``None`` if it is not chunked, or why it is refused."""
    if not datagram.startswith(MAGIC):
        return None
    if len(datagram) < CHUNK_HEADER:
        return Refused("gelf", f"chunk of {len(datagram)} bytes, shorter than its header")
    seq, count = datagram[10], datagram[11]
    if not 1 <= count <= MAX_CHUNKS:
        return Refused("gelf", f"chunk count {count} (1 to {MAX_CHUNKS} allowed)")
    if seq >= count:
        return Refused("gelf", f"chunk number {seq} of {count}")
    return GelfChunk(datagram[2:10].hex(), seq + 1, count, datagram[CHUNK_HEADER:])


def looks_like(data: bytes) -> bool:
    return data.startswith((MAGIC, b"\x1f\x8b")) or (
        len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0
    )


class _NotCompressed(ValueError):
    """The bytes only looked like zlib or gzip."""


def _inflate(data: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, MAX_MESSAGE + 1)
    except zlib.error as exc:
        raise _NotCompressed(str(exc)) from None
    if len(out) > MAX_MESSAGE or d.unconsumed_tail:
        raise ValueError(f"decompresses to more than {MAX_MESSAGE} bytes")
    if not d.eof:
        raise _NotCompressed("compressed data is truncated")
    return out


def decode(data: bytes, *, chunked: bool = True) -> Record | Refused | None:
    """A whole GELF message as a Record, or why not.

    For a single datagram (*chunked* false) the zlib and gzip signatures
    are weak (two bytes): data that does not decompress is ``None``, not
    GELF after all, and shown as text.  A decompression bomb is refused.
    """
    try:
        if data.startswith(b"\x1f\x8b"):
            data = _inflate(data, 31)
        elif data[:1] == b"\x78":
            data = _inflate(data, 15)
    except _NotCompressed as exc:
        return Refused("gelf", str(exc)) if chunked else None
    except ValueError as exc:
        return Refused("gelf", str(exc))
    if len(data) > MAX_MESSAGE:
        return Refused("gelf", f"{len(data)} bytes, more than {MAX_MESSAGE}")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return Refused("gelf", f"not JSON ({exc})")
    return from_object(obj)


def from_object(obj: Any) -> Record | Refused:
    if not isinstance(obj, dict) or not isinstance(obj.get("short_message"), str):
        return Refused("gelf", "no short_message")
    text = obj["short_message"]
    full = obj.get("full_message")
    if isinstance(full, str) and full and full != text:
        text = full if full.startswith(text) else f"{text}\n{full}"
    severity = obj.get("level", 1)
    level = (
        level_from_severity(severity)
        if isinstance(severity, int) and not isinstance(severity, bool)
        else None
    )
    fields: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(key, str) and key.startswith("_") and key != "_id":
            if isinstance(value, (str, int, float, bool)):
                fields[key[1:]] = value
    logger = fields.pop("logger_name", None) or fields.pop("logger", None)
    return decoded_record(
        "gelf",
        text,
        level=level,
        logger=logger,
        host=obj.get("host"),
        app=obj.get("facility"),
        fields=fields,
    )

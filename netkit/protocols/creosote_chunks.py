"""The sending half of Mr. Creosote's wire format: a message cut into UDP datagrams.

The format is described in :mod:`netkit.protocols.creosote`, which holds the
receiving half (:func:`~netkit.protocols.creosote.parse` and the
:class:`~netkit.protocols.creosote.Reassembler`) and re-exports everything
here.  A sender (``netkit creosote spew``, the logging handler) imports only
this module: the limits, :func:`header` and :func:`split`.
"""

from __future__ import annotations

import re

MAGIC = b"[creosote "
#: the listener's port (the lecture leaves it unnamed) and the sender's chunk size
DEFAULT_PORT = 7739
DEFAULT_CHUNK_SIZE = 1024
HEADER_LEN = 32
MAX_CHUNKS = 99_999
MAX_DATAGRAM = 65_507  # the largest UDP payload over IPv4


def header(msg_id: str, index: int, total: int) -> bytes:
    out = b"[creosote %s %05d/%05d] " % (msg_id.encode("ascii"), index, total)
    assert len(out) == HEADER_LEN, out
    return out


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def min_chunk_size(data: bytes) -> int:
    """The smallest chunk size that can carry *data*: header plus its longest character."""
    longest = 1
    run = 0
    for byte in data:
        run = run + 1 if _is_continuation(byte) else 1
        longest = max(longest, min(run, 4))
    return HEADER_LEN + longest


def split(data: bytes, chunk_size: int, msg_id: str) -> list[bytes]:
    """The datagrams that carry *data*, each at most *chunk_size* bytes.

    Raises ``ValueError`` when *chunk_size* cannot hold the header plus one
    character, or when the message would need more than ``MAX_CHUNKS``.
    """
    if not re.fullmatch(r"[0-9a-f]{8}", msg_id):
        raise ValueError(f"message id {msg_id!r} is not 8 lower-case hex digits")
    if len(data) <= chunk_size and not data.startswith(MAGIC):
        return [data]
    cap = chunk_size - HEADER_LEN
    if cap < 1:
        raise ValueError(
            f"chunk size {chunk_size} is too small: a chunk needs the {HEADER_LEN}-byte header "
            f"plus at least one character ({HEADER_LEN + 1} bytes or more)"
        )
    if len(data) > cap * MAX_CHUNKS:
        raise ValueError(
            f"message of {len(data)} bytes needs more than {MAX_CHUNKS} chunks of "
            f"{chunk_size} bytes; use a larger chunk size"
        )
    payloads: list[bytes] = []
    pos = 0
    while pos < len(data) or not payloads:
        end = pos + cap
        if end < len(data):
            # back off to the start of the character that byte *end* belongs to
            start, steps = end, 0
            while steps < 3 and start > pos and _is_continuation(data[start]):
                start -= 1
                steps += 1
            if _is_continuation(data[start]):
                cut = end  # not UTF-8 here anyway: cut where the size says
            elif start > pos:
                cut = start
            else:
                raise ValueError(
                    f"chunk size {chunk_size} is too small for this message: it needs at least "
                    f"{min_chunk_size(data)} bytes (the {HEADER_LEN}-byte header plus its "
                    "longest character)"
                )
            end = cut
        payloads.append(data[pos:end])
        pos = end
    if len(payloads) > MAX_CHUNKS:  # cuts at character boundaries can add a few
        raise ValueError(
            f"message of {len(data)} bytes needs more than {MAX_CHUNKS} chunks of "
            f"{chunk_size} bytes; use a larger chunk size"
        )
    total = len(payloads)
    return [header(msg_id, i, total) + p for i, p in enumerate(payloads, 1)]

"""Creosote wire format: chunking at UTF-8 boundaries and reassembly (units and properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import creosote
from netkit.protocols.creosote import HEADER_LEN, Complete, Incomplete, Reassembler
from netkit.protocols.records import Refused
from tests.profiles import examples

MSG_ID = "0badcafe"
SRC = ("127.0.0.1", 5555)


def reassemble(datagrams: list[bytes], order: list[int] | None = None) -> Complete:
    r = Reassembler()
    got: list[Complete | Incomplete | Refused] = []
    for i in order if order is not None else range(len(datagrams)):
        got += r.feed(SRC, datagrams[i], 0.0)
    assert len(got) == 1 and isinstance(got[0], Complete), got
    assert r.pending == 0
    return got[0]


def test_short_message_is_one_plain_datagram() -> None:
    assert creosote.split(b"hello", 1024, MSG_ID) == [b"hello"]
    assert creosote.split(b"", 1024, MSG_ID) == [b""]


def test_long_message_gets_readable_headers() -> None:
    data = b"x" * 100
    dgrams = creosote.split(data, HEADER_LEN + 40, MSG_ID)
    assert len(dgrams) == 3
    assert dgrams[0] == b"[creosote 0badcafe 00001/00003] " + b"x" * 40
    assert dgrams[2].startswith(b"[creosote 0badcafe 00003/00003] ")
    assert all(len(d) <= HEADER_LEN + 40 for d in dgrams)
    assert reassemble(dgrams, [2, 0, 1]) == Complete(SRC, data, 3)


def test_cuts_only_between_utf8_characters() -> None:
    text = "é€😀" * 20
    dgrams = creosote.split(text.encode(), HEADER_LEN + 5, MSG_ID)
    for d in dgrams:
        d[HEADER_LEN:].decode("utf-8")  # each chunk readable on its own
        assert len(d) <= HEADER_LEN + 5


def test_chunk_size_too_small_for_a_character() -> None:
    with pytest.raises(ValueError, match="too small"):
        creosote.split("😀".encode() * 20, HEADER_LEN + 3, MSG_ID)
    with pytest.raises(ValueError, match="too small"):
        creosote.split(b"a" * 40, HEADER_LEN, MSG_ID)  # no room for one byte after the header
    # ...but a message that fits needs no header
    assert creosote.split(b"abc", 3, MSG_ID) == [b"abc"]
    assert creosote.min_chunk_size("a😀".encode()) == HEADER_LEN + 4


def test_message_that_looks_like_a_header_is_wrapped() -> None:
    data = b"[creosote 12345678 00001/00002] not a chunk"
    dgrams = creosote.split(data, 1024, MSG_ID)
    assert len(dgrams) == 1 and dgrams[0] != data
    assert reassemble(dgrams) == Complete(SRC, data, 1)


def test_too_many_chunks() -> None:
    with pytest.raises(ValueError, match="chunks"):
        creosote.split(b"x" * (creosote.MAX_CHUNKS + 1), HEADER_LEN + 1, MSG_ID)


def test_bad_headers_are_plain_messages() -> None:
    for d in (
        b"[creosote 0badcafe 00003/00002] x",  # index past total
        b"[creosote 0badcafe 00000/00002] x",
        b"[creosote 0BADCAFE 00001/00002] x",
        b"[creosote 0badcafe 1/2] x",
    ):
        assert creosote.parse(d) is None
        assert Reassembler().feed(SRC, d, 0.0) == [Complete(SRC, d, 1)]


def test_incomplete_after_timeout_and_on_flush() -> None:
    dgrams = creosote.split(b"a" * 30 + b"b" * 30 + b"c" * 30, HEADER_LEN + 30, MSG_ID)
    r = Reassembler(timeout=2.0)
    assert r.feed(SRC, dgrams[0], 10.0) == []
    assert r.feed(SRC, dgrams[2], 11.0) == []
    assert r.feed(SRC, dgrams[2], 11.5) == []  # duplicate: ignored, does not extend the wait
    assert r.duplicates == 1
    assert r.next_deadline() == 13.0
    assert r.expire(12.9) == []
    [inc] = r.expire(13.0)
    assert inc == Incomplete(SRC, MSG_ID, b"a" * 30 + b"c" * 30, 2, 3, [2], "timeout", 1, [(2, 2)])
    assert r.pending == 0 and r.next_deadline() is None
    r.feed(SRC, dgrams[1], 20.0)
    [inc] = r.flush()
    assert (inc.received, inc.total, inc.missing, inc.reason) == (1, 3, [1, 3], "stopped")


def test_sources_are_kept_apart() -> None:
    a = creosote.split(b"A" * 100, HEADER_LEN + 28, MSG_ID)
    b = creosote.split(b"B" * 100, HEADER_LEN + 28, MSG_ID)  # same id, other source
    assert len(a) == len(b) == 4
    r = Reassembler()
    other = ("127.0.0.1", 6666)
    for da, db in zip(a[:-1], b[:-1], strict=True):
        assert r.feed(SRC, da, 0) == [] and r.feed(other, db, 0) == []
    assert r.feed(SRC, a[-1], 0) == [Complete(SRC, b"A" * 100, 4)]
    assert r.feed(other, b[-1], 0) == [Complete(other, b"B" * 100, 4)]


def test_memory_is_bounded() -> None:
    r = Reassembler(max_pending=3, max_bytes=10_000)
    out = []
    for i in range(10):
        dgrams = creosote.split(b"z" * 100, HEADER_LEN + 60, f"{i:08x}")
        out += r.feed(("127.0.0.1", 1000 + i), dgrams[0], float(i))
    assert r.pending == 3
    assert [o.reason for o in out if isinstance(o, Incomplete)] == ["evicted"] * 7
    big = creosote.split(b"y" * 30_000, 1024, "ffffffff")
    for d in big[:-1]:
        out += r.feed(SRC, d, 100.0)
    assert r.pending <= 3


# -- properties ---------------------------------------------------------------


@settings(max_examples=examples(150), deadline=None)
@given(text=st.text(max_size=300), extra=st.integers(min_value=0, max_value=200), data=st.data())
def test_any_text_any_chunk_size_round_trips(text: str, extra: int, data: st.DataObject) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raw = text.encode("utf-8", "replace")
    size = creosote.min_chunk_size(raw) + extra
    dgrams = creosote.split(raw, size, MSG_ID)
    assert all(len(d) <= size for d in dgrams)
    for d in dgrams:
        chunk = creosote.parse(d)
        (chunk.payload if chunk else d).decode("utf-8")  # never cut inside a character
    order = data.draw(st.permutations(range(len(dgrams))))
    assert reassemble(dgrams, list(order)).data == raw


@settings(max_examples=examples(100), deadline=None)
@given(raw=st.binary(max_size=400), size=st.integers(min_value=HEADER_LEN + 4, max_value=300))
def test_any_bytes_round_trip_exactly(raw: bytes, size: int) -> None:
    dgrams = creosote.split(raw, size, MSG_ID)
    assert all(len(d) <= size for d in dgrams)
    assert reassemble(dgrams, list(reversed(range(len(dgrams))))).data == raw


@settings(max_examples=examples(100), deadline=None)
@given(text=st.text(min_size=1, max_size=100), size=st.integers(min_value=1, max_value=120))
def test_too_small_is_refused_exactly_when_it_cannot_fit(text: str, size: int) -> None:
    raw = text.encode("utf-8", "replace")
    needed = creosote.min_chunk_size(raw)
    if len(raw) <= size and not raw.startswith(creosote.MAGIC):
        assert creosote.split(raw, size, MSG_ID) == [raw]
    elif size < needed:
        with pytest.raises(ValueError):
            creosote.split(raw, size, MSG_ID)
    else:
        assert reassemble(creosote.split(raw, size, MSG_ID)).data == raw


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_reassembler_never_raises_on_garbage(datagrams: list[bytes]) -> None:
    r = Reassembler(max_pending=4, max_bytes=500)
    for i, d in enumerate(datagrams):
        r.feed(SRC, d, float(i))
    r.flush()
    assert r.pending == 0

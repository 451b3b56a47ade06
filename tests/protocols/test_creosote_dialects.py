"""Sans-IO tests of the creosote dialects: records, safe pickles, GELF, framing, spew joining."""

from __future__ import annotations

import gzip
import json
import logging
import logging.handlers
import os
import pickle
import re
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import creosote, dialects, gelf, safepickle, syslog
from netkit.protocols.creosote import Reassembler, header, missing_chunks
from netkit.protocols.records import (
    ERROR,
    INFO,
    NOTICE,
    WARNING,
    Record,
    RecordFilter,
    Refused,
    format_5424,
    level_from_severity,
    level_name,
    octet_frame,
    parse_level,
    severity_from_level,
)

SRC = ("127.0.0.1", 40000)


def log_record(
    msg: str = "step %d failed", args: tuple[Any, ...] = (3,), exc: bool = False, **extra: Any
) -> Any:
    record = logging.LogRecord("app.db", logging.ERROR, "/x.py", 7, msg, args, None)
    if exc:
        try:
            {"present": 1}["missing"]
        except KeyError:
            record.exc_info = sys.exc_info()
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def stdlib_pickle(record: logging.LogRecord) -> bytes:
    """What DatagramHandler / SocketHandler put on the wire for *record*."""
    handler = logging.handlers.DatagramHandler("127.0.0.1", 9)
    try:
        if record.exc_info:
            handler.format(record)  # the handler's own formatter fills exc_text first
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        return handler.makePickle(record)
    finally:
        handler.close()


# --------------------------------------------------------------------------
# levels and filters


def test_levels_on_one_scale() -> None:
    assert parse_level("WARNING") == parse_level("warn") == WARNING == 30
    assert parse_level("err") == ERROR and parse_level("notice") == NOTICE
    assert parse_level("35") == 35
    for bad in ("loud", "101", "-1", "٣", ""):
        with pytest.raises(ValueError, match="unknown level"):
            parse_level(bad)
    assert [level_from_severity(s) for s in range(8)] == [70, 60, 50, 40, 30, 25, 20, 10]
    assert [severity_from_level(level_from_severity(s)) for s in range(8)] == list(range(8))
    assert severity_from_level(35) == 4 and severity_from_level(0) == 7
    assert level_name(40) == "error" and level_name(35) == "level 35"


def test_filter() -> None:
    rec = Record("json", b"disk is full\nretrying", level=WARNING, logger="app.db")
    assert RecordFilter().rejects(rec, "h") is None and not RecordFilter().active
    assert RecordFilter(level=ERROR).rejects(rec, "h") == "level"
    assert RecordFilter(level=WARNING).rejects(rec, "h") is None
    assert RecordFilter(level=WARNING).rejects(Record("spew", b"x"), "h") == "level"  # INFO
    assert RecordFilter(level=INFO).rejects(Record("spew", b"x"), "h") is None
    assert RecordFilter(logger="app").rejects(rec, "h") is None
    assert RecordFilter(logger="app.").rejects(rec, "h") is None
    assert RecordFilter(logger="ap").rejects(rec, "h") == "logger"
    assert RecordFilter(source="10.0.0.1").rejects(rec, "127.0.0.1") == "source"
    assert RecordFilter(grep=re.compile("^retry", re.M)).rejects(rec, "h") is None
    assert RecordFilter(grep=re.compile("nothing")).rejects(rec, "h") == "grep"


def test_format_5424_parses_back() -> None:
    rec = Record(
        "pickle",
        'step 3 failed\nTraceback: boom ] "q" é'.encode(),
        level=ERROR,
        logger="app.db",
        fields={"request": 'a"b]c\\', "nested": [1]},
    )
    out = format_5424(rec, timestamp="2026-12-02T10:00:00.000+00:00", source="127.0.0.1:5000")
    parsed = syslog.parse(out)
    assert parsed is not None and parsed.format == "rfc5424"
    assert parsed.severity == 3 and parsed.facility == 1
    assert parsed.host == "127.0.0.1" and parsed.app == "app.db"
    assert parsed.message == rec.message
    sd = parsed.structured_data or ""
    assert sd.startswith("[netkit@32473 ") and 'logger="app.db"' in sd
    assert 'request="a\\"b\\]c\\\\"' in sd and "nested" not in sd
    lf = format_5424(rec, timestamp="-", source="h:1", lf_safe=True)
    assert b"\n" not in lf and b"failed#012Traceback" in lf
    assert octet_frame(b"abc") == b"3 abc"


@given(
    st.text(max_size=80),
    st.one_of(st.none(), st.integers(0, 100)),
    st.one_of(st.none(), st.text(max_size=60)),
)
def test_format_5424_always_parses(message: str, level: int | None, logger: str | None) -> None:
    rec = Record("json", message.encode("utf-8", "surrogatepass"), level=level, logger=logger)
    out = format_5424(rec, timestamp="-", source="[::1]:7", lf_safe=True)
    parsed = syslog.parse(out)
    assert parsed is not None and parsed.format == "rfc5424"
    assert b"\n" not in out


# --------------------------------------------------------------------------
# the stdlib pickles, safely


def test_genuine_datagram_handler_record() -> None:
    wire = stdlib_pickle(log_record(exc=True, request_id="r-7", user={"id": 3}))
    [rec] = dialects.decode_datagram(wire) or []
    assert isinstance(rec, Record)
    assert rec.dialect == "pickle" and rec.level == logging.ERROR and rec.logger == "app.db"
    text = rec.message.decode()
    assert text.startswith("step 3 failed\nTraceback (most recent call last):")
    assert text.rstrip().endswith("KeyError: 'missing'")
    assert rec.fields["request_id"] == "r-7" and rec.fields["user"] == "{'id': 3}"
    assert rec.fields["lineno"] == 7 and "exc_text" in rec.fields


def _reduce_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"msg": "hi", "x": Evil()})


def test_hostile_pickles_are_refused_never_run(tmp_path: Path) -> None:
    import datetime

    marker = tmp_path / "pwned"
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    shared: list[Any] = [0]
    for _ in range(30):
        shared = [shared, shared]  # 2**30 paths through a small pickle
    cases = {
        "reduce": _reduce_pickle(marker),
        "class": pickle.dumps({"msg": "t", "when": datetime.datetime(2020, 1, 1)}),
        "deep": pickle.dumps({"msg": "d", "x": deep}),
        "wide": pickle.dumps({"msg": "w", "x": shared}),
        "persistent": b"(P1\n.",
        "build on a dict": b"}}b.",
        "reduce without a global": b"(I1\nI2\nt(dR.",
        "ext registry": b"\x80\x02\x82\x01.",
        "bigint": pickle.dumps({"msg": "i", "x": 1 << 4000}),
        "truncated": stdlib_pickle(log_record())[4:-5],
        "not a dict": pickle.dumps(["msg"]),
        "no msg": pickle.dumps({"levelno": 10}),
    }
    for name, payload in cases.items():
        with pytest.raises(safepickle.UnsafePickle) as info:
            safepickle.record_from_dict(safepickle.loads(payload))
        assert str(info.value), name
        frame = struct.pack(">L", len(payload)) + payload
        decoded = dialects.decode_datagram(frame)
        assert decoded is not None and len(decoded) == 1, name
        refused = decoded[0]
        assert isinstance(refused, Refused) and refused.dialect == "pickle", name
    assert not marker.exists()
    assert "refers to posix.system" in str(safepickle.decode_frame(cases["reduce"]))
    with pytest.raises(safepickle.UnsafePickle, match="more than"):
        safepickle.loads(b"\x80\x04" + b"N" * safepickle.MAX_PICKLE)


def test_extra_containers_are_shown_bounded() -> None:
    long = "x" * 100_000
    wire = stdlib_pickle(log_record(many=[long] * 9000))  # 100 kB: 900 MB if repr'd whole
    assert len(wire) < 200_000
    [rec] = dialects.decode_datagram(wire) or []
    assert isinstance(rec, Record) and len(rec.fields["many"]) < 10_000


def test_a_64k_record_is_accepted_whole() -> None:
    wire = stdlib_pickle(log_record("x" * 65536, ()))
    [rec] = dialects.decode_datagram(wire) or []
    assert isinstance(rec, Record) and len(rec.message) == 65536


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_safe_unpickler_only_ever_refuses(data: bytes) -> None:
    try:
        safepickle.record_from_dict(safepickle.loads(data))
    except safepickle.UnsafePickle:
        pass


# --------------------------------------------------------------------------
# GELF


def gelf_json(**extra: Any) -> bytes:
    obj = {
        "version": "1.1",
        "host": "web-1",
        "short_message": "request failed",
        "full_message": "request failed\nTraceback: boom",
        "level": 3,
        "_logger_name": "app.web",
        "_request_id": "r-9",
    }
    obj.update(extra)
    return json.dumps(obj).encode()


def gelf_chunks(data: bytes, size: int, msg_id: bytes = b"\x01" * 8) -> list[bytes]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [gelf.MAGIC + msg_id + bytes([i, len(pieces)]) + p for i, p in enumerate(pieces)]


@pytest.mark.parametrize("encode", [lambda b: b, zlib.compress, gzip.compress])
def test_gelf_plain_zlib_gzip(encode: Any) -> None:
    [rec] = dialects.decode_datagram(encode(gelf_json())) or []
    assert isinstance(rec, Record) and rec.dialect == "gelf"
    assert rec.message == b"request failed\nTraceback: boom"
    assert (rec.level, rec.logger, rec.host) == (ERROR, "app.web", "web-1")
    assert rec.fields == {"request_id": "r-9"}


def test_gelf_chunked_and_bounded() -> None:
    data = zlib.compress(gelf_json(full_message="x" * 5000))
    collector = dialects.GelfCollector()
    out: list[Any] = []
    for d in reversed(gelf_chunks(data, 100)):
        chunk = gelf.parse_chunk(d)
        assert isinstance(chunk, gelf.GelfChunk)
        out += collector.feed(SRC, chunk, 0.0)
    [whole] = out
    rec = gelf.decode(whole.data)
    assert isinstance(rec, Record) and rec.message.endswith(b"x" * 5000)
    assert isinstance(gelf.parse_chunk(gelf.MAGIC + b"\0" * 8 + bytes([0, 129])), Refused)
    assert isinstance(gelf.parse_chunk(gelf.MAGIC + b"\0" * 8 + bytes([5, 5])), Refused)
    assert isinstance(gelf.parse_chunk(gelf.MAGIC + b"\0"), Refused)
    bomb = zlib.compress(b"{" + b" " * (gelf.MAX_MESSAGE + 10))
    refused = gelf.decode(bomb)
    assert isinstance(refused, Refused) and "more than" in refused.reason
    assert isinstance(gelf.decode(zlib.compress(gelf_json())[:-4]), Refused)


def test_gelf_chunk_bomb_is_reported_in_bounded_space() -> None:
    collector = dialects.GelfCollector(timeout=1.0, max_pending=16)
    out: list[Any] = []
    for n in range(100):  # 100 messages claiming 128 chunks, one chunk each
        d = gelf.MAGIC + n.to_bytes(8, "big") + bytes([0, 128]) + b"x" * 1000
        chunk = gelf.parse_chunk(d)
        assert isinstance(chunk, gelf.GelfChunk)
        out += collector.feed(SRC, chunk, float(n) / 1000)
    out += collector.reassembler.expire(10.0)
    assert len(out) == 100 and all(isinstance(i, creosote.Incomplete) for i in out)
    assert collector.reassembler.pending == 0
    assert all(i.missing_count == 127 and i.missing_ranges == [(2, 128)] for i in out)


# --------------------------------------------------------------------------
# netkit chunks: what a header may claim (issue 14, item 10)


def test_a_tiny_datagram_claiming_99999_chunks_gives_a_small_report() -> None:
    r = Reassembler()
    assert r.feed(SRC, header("0badcafe", 1, 99_999) + b"x", 0.0) == []
    start = time.process_time()
    [inc] = r.flush()
    assert time.process_time() - start < 1.0
    assert inc.missing_count == 99_998 and inc.missing_ranges == [(2, 99_999)]
    assert len(inc.missing) == creosote.MISSING_LISTED
    assert len(json.dumps(inc.missing) + json.dumps(inc.missing_ranges)) < 1000


def test_a_header_may_not_claim_more_than_its_chunk_makes_plausible() -> None:
    r = Reassembler(max_message=1000)
    [refused] = r.feed(SRC, header("0badcafe", 1, 200) + b"x" * 10, 0.0)
    assert isinstance(refused, Refused) and "claims a message of 2000 bytes" in refused.reason
    assert r.refused == 1 and r.pending == 0
    assert r.feed(SRC, header("0badcafe", 1, 100) + b"x" * 10, 0.0) == []


@given(st.sets(st.integers(1, 300)), st.integers(1, 300))
def test_missing_chunks_matches_the_obvious_answer(got: set[int], total: int) -> None:
    got = {g for g in got if g <= total}
    listed, ranges = missing_chunks(sorted(got), total)
    expected = [i for i in range(1, total + 1) if i not in got]
    assert listed == expected[: creosote.MISSING_LISTED]
    flat = [i for first, last in ranges for i in range(first, last + 1)]
    assert flat == expected[: len(flat)]
    if len(ranges) < creosote.MISSING_RANGES:
        assert flat == expected


# --------------------------------------------------------------------------
# JSON lines and syslog datagrams


def test_json_lines() -> None:
    data = (
        b'{"level": "warning", "logger": "app", "message": "slow", "ms": 812}\n'
        b'{"levelno": 40, "name": "app.db", "msg": "down", "exc_text": "Traceback: x"}\n'
    )
    a, b = dialects.decode_datagram(data) or []
    assert isinstance(a, Record) and isinstance(b, Record)
    assert (a.dialect, a.level, a.logger, a.message, a.fields) == (
        "json",
        WARNING,
        "app",
        b"slow",
        {"ms": 812},
    )
    assert (b.level, b.logger, b.message) == (ERROR, "app.db", b"down\nTraceback: x")
    assert dialects.decode_datagram(b'{"just": "json"}') is None  # shown as text
    assert dialects.decode_datagram(b"{not json") is None


@pytest.mark.parametrize("tail", [b"", b"\x00", b"\n"])
def test_syslog_terminators_stripped(tail: bytes) -> None:
    [rec] = dialects.decode_datagram(b"<11>app: broke" + tail) or []
    assert isinstance(rec, Record)
    assert (rec.dialect, rec.level, rec.app, rec.message) == ("rfc3164", ERROR, "app", b"broke")


def test_plain_text_is_none() -> None:
    # two bytes that only look like a zlib or gzip header: text, not a refusal
    for d in (b"hello", b"", b"<9999>x", b"\x00\x00", b"\x78\x9c garbage", b"\x1f\x8bxx"):
        assert dialects.decode_datagram(d) is None


# --------------------------------------------------------------------------
# TCP framing


def _feed_all(decoder: dialects.StreamDecoder, data: bytes, cuts: list[int]) -> list[Any]:
    """What the decoder gives: records (and refusals) for Accepted (and RefusedFrom)."""
    out: list[Any] = []
    pos = 0
    for cut in [*sorted(set(c % (len(data) + 1) for c in cuts)), len(data)]:
        out += decoder.feed(data[pos:cut])
        pos = max(pos, cut)
    return [
        got.record if isinstance(got, dialects.Accepted) else got.refused
        for got in out + decoder.eof()
    ]


def _refused(items: list[Any]) -> Refused:
    [item] = items
    assert isinstance(item, dialects.RefusedFrom), item
    return item.refused


def test_octet_counting_lf_nul_and_pickle_streams() -> None:
    msgs = [b"<14>1 - host app - - - hello", b"<11>1 - host app - - - line1\nline2"]
    octet = b"".join(octet_frame(m) for m in msgs)
    got = _feed_all(dialects.StreamDecoder(), octet, [])
    assert [r.message for r in got] == [b"hello", b"line1\nline2"]
    lf = b'<14>app: one\n<14>app: two\x00{"message": "three"}\r\nplain four\nlast'
    got = _feed_all(dialects.StreamDecoder(), lf, [])
    assert [r.dialect for r in got] == ["rfc3164", "rfc3164", "json", "text", "text"]
    assert [r.message for r in got] == [
        b"one",
        b"two",
        b"three",
        b"plain four",
        b"last",
    ]
    pickles = stdlib_pickle(log_record()) * 3
    got = _feed_all(dialects.StreamDecoder(), pickles, [1, 2, 3, 50])
    assert [r.message for r in got] == [b"step 3 failed"] * 3


def messages(got: list[dialects.Collected]) -> list[bytes]:
    """The message of each collected record (every one accepted)."""
    assert all(isinstance(g, dialects.Accepted) for g in got), got
    return [g.record.message for g in got if isinstance(g, dialects.Accepted)]


def test_unframed_syslog_records_end_at_the_next_pri() -> None:
    d = dialects.StreamDecoder()
    got = d.feed(b"<11>myapp: one <x> 1<2<14>myapp: two")
    assert messages(got) == [b"one <x> 1<2"] and d.unframed
    assert messages(d.flush()) == [b"two"] and not d.unframed
    assert messages(d.feed(b"<14>myapp: three")) == []
    assert messages(d.eof()) == [b"three"]
    framed = dialects.StreamDecoder()
    assert messages(framed.feed(b"<14>a: x\n<14>a: y <14> z")) == [b"x"]
    assert not framed.unframed  # an end mark was seen: this connection is LF-framed


def test_hostile_streams_are_bounded() -> None:
    d = dialects.StreamDecoder(max_record=1000)
    refused = _refused(d.feed(b"1000000000000 <14>1 - - - - - x"))
    assert "octet count of more than 10 digits" in refused.reason and d.failed
    assert d.feed(b"more") == []
    d = dialects.StreamDecoder(max_record=1000)
    assert "octet count 5000 (limit 1000)" in _refused(d.feed(b"5000 <14>")).reason
    d = dialects.StreamDecoder(max_record=1000)
    assert d.feed(b"123") == [] and "octet count expected" in _refused(d.feed(b"x")).reason
    d = dialects.StreamDecoder(max_record=1000)
    assert "frame of 8388608 bytes" in _refused(d.feed(struct.pack(">L", 1 << 23))).reason
    d = dialects.StreamDecoder(max_record=1000)
    assert d.feed(b"a" * 1000) == [] and "longer than 1000" in _refused(d.feed(b"a")).reason
    d = dialects.StreamDecoder()
    frame = stdlib_pickle(log_record())
    assert d.feed(frame[:-3]) == []
    assert "ended inside a frame" in _refused(d.eof()).reason


@settings(max_examples=100)
@given(st.lists(st.integers(0, 2000), max_size=8))
def test_any_cut_of_a_stream_gives_the_same_records(cuts: list[int]) -> None:
    msgs = [b"<14>1 - h a - - - m%d" % i for i in range(5)] + [b"<11>1 - h a - - - x\ny"]
    for data in (
        b"".join(octet_frame(m) for m in msgs),
        stdlib_pickle(log_record()) * 4,
        b"".join(m.replace(b"\n", b" ") + b"\n" for m in msgs),
    ):
        whole = _feed_all(dialects.StreamDecoder(), data, [])
        assert _feed_all(dialects.StreamDecoder(), data, cuts) == whole
        assert whole and not any(isinstance(r, Refused) for r in whole)


# --------------------------------------------------------------------------
# the lecture's spew()


def lecture_spew(msg: bytes, bufsize: int = 1024) -> list[bytes]:
    out = []
    while msg:
        out.append(msg[:bufsize])
        msg = msg[bufsize:]
    return out


def test_spew_pieces_joined() -> None:
    j = dialects.SpewJoiner(gap=0.2)
    msg = "".join(f"line {i} é\n" for i in range(400)).encode()  # cut inside an é too
    out: list[Any] = []
    for i, d in enumerate(lecture_spew(msg)):
        out += j.feed(SRC, d, i * 0.01)
    assert out == [(SRC, msg, len(lecture_spew(msg)))]
    # exactly a multiple of BUFSIZE: the gap ends it
    out = []
    for d in lecture_spew(b"x" * 2048):
        out += j.feed(SRC, d, 1.0)
    assert out == [] and j.next_deadline() == pytest.approx(1.2)
    assert j.expire(1.1) == [] and j.expire(1.25) == [(SRC, b"x" * 2048, 2)]
    # short messages come out at once; other sources are kept apart
    assert j.feed(SRC, b"short", 2.0) == [(SRC, b"short", 1)]
    other = ("127.0.0.1", 40001)
    assert j.feed(SRC, b"a" * 1024, 3.0) == []
    assert j.feed(other, b"b" * 10, 3.0) == [(other, b"b" * 10, 1)]
    assert j.feed(SRC, b"a" * 2048, 3.05) == [(SRC, b"a" * 1024, 1)]  # longer: a new message
    assert j.flush() == [(SRC, b"a" * 2048, 1)]


def test_spew_joining_leaves_other_traffic_alone() -> None:
    j = dialects.SpewJoiner(gap=0.2)
    for first in (b"y" * 1011, b"x" * 1000 + b"\x00" * 24, bytes(range(256)) * 4, b"z" * 3011):
        assert j.feed(SRC, first, 0.0) == [(SRC, first, 1)]  # not a BUFSIZE of text
        assert j.feed(SRC, b"ok", 0.0) == [(SRC, b"ok", 1)]
    assert j.feed(SRC, b"t" * 1024, 1.0) == []
    binary = b"\xff" * 10
    assert j.feed(SRC, binary, 1.0) == [(SRC, b"t" * 1024, 1), (SRC, binary, 1)]

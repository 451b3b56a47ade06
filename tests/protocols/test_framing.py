"""Line framing with a cap (sans-IO), and the upper-server session on top of it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols.lines import LineFramer, content, is_end, split_lines, upper
from netkit.protocols.upper import UpperSession, too_long_reply
from tests.profiles import examples

# streams made of bytes that matter to framing, plus anything else
_byte = st.sampled_from([b"a", b"Z", b"\n", b"\r", b"\x00", b"\xff", b"\xc3\xa9", b" "])
streams = st.lists(_byte, max_size=80).map(b"".join)


def feed_all(framer: LineFramer, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


@st.composite
def splits(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(streams)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    chunks, start = [], 0
    for cut in [*cuts, len(data)]:
        chunks.append(data[start:cut])
        start = cut
    return data, chunks


@settings(max_examples=examples(300), deadline=None)
@given(splits(), st.integers(1, 12))
def test_any_split_frames_like_the_whole_stream(case: tuple[bytes, list[bytes]], cap: int) -> None:
    data, chunks = case
    framer = LineFramer(cap)
    lines = feed_all(framer, chunks)
    expected, too_long = split_lines(data, cap)
    assert lines == expected
    assert framer.too_long == too_long
    assert framer.pending <= cap + 1  # memory stays bounded


@settings(max_examples=examples(200), deadline=None)
@given(streams, st.integers(1, 12))
def test_byte_by_byte_frames_like_the_whole_stream(data: bytes, cap: int) -> None:
    framer = LineFramer(cap)
    lines = feed_all(framer, [data[i : i + 1] for i in range(len(data))])
    assert (lines, framer.too_long) == split_lines(data, cap)


@settings(max_examples=examples(200), deadline=None)
@given(streams)
def test_lines_join_back_to_the_stream(data: bytes) -> None:
    framer = LineFramer(1000)
    lines = framer.feed(data)
    assert b"".join(lines) + framer.flush() == data
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)


def test_cap_counts_the_line_without_its_ending() -> None:
    f = LineFramer(3)
    assert f.feed(b"abc\r\nabc\n") == [b"abc\r\n", b"abc\n"]
    assert not f.too_long
    f = LineFramer(3)
    assert f.feed(b"abc\r") == []  # the CR may be half of CRLF
    assert not f.too_long
    assert f.feed(b"\n") == [b"abc\r\n"]
    f = LineFramer(3)
    assert f.feed(b"ok\nabcd") == [b"ok\n"]
    assert f.too_long
    assert f.feed(b"\nmore\n") == []


def test_a_huge_line_is_refused_without_buffering_it() -> None:
    f = LineFramer(65_536)
    chunk = b"x" * 65_536
    assert f.feed(chunk) == []
    assert not f.too_long and f.pending == 65_536
    assert f.feed(b"y") == []
    assert f.too_long and f.pending == 0
    for _ in range(16):  # 1 MiB more: nothing is kept
        assert f.feed(chunk) == []
    assert f.pending == 0


def test_helpers() -> None:
    assert content(b"ab\r\n") == b"ab" and content(b"ab\n") == b"ab" and content(b"ab") == b"ab"
    assert is_end(b"\r\n") and is_end(b"\n") and not is_end(b" \n")
    assert upper(b"caf\xc3\xa9 \xff x\r\n") == b"CAF\xc3\xa9 \xff X\r\n"  # ASCII only
    with pytest.raises(ValueError):
        LineFramer(0)


def test_session_upper_cases_keeps_endings_and_stops_at_the_empty_line() -> None:
    s = UpperSession(100, log_lines=True)
    assert s.receive(b"abc\r\nd") == b"ABC\r\n" and s.end is None
    assert not s.idle
    assert s.receive(b"ef\n\r\nafter\n") == b"DEF\n" and s.end == "empty line"
    assert s.lines == 2
    assert s.take_heard() == [b"abc", b"def"]
    assert s.receive(b"more\n") == b"" and s.lines == 2  # nothing after the end


def test_session_eof_is_the_empty_bytes() -> None:
    s = UpperSession(100)
    assert s.receive(b"one\n") == b"ONE\n"
    assert s.receive(b"") == b"" and s.end == "eof"
    assert s.take_heard() == []  # lines are collected only with log_lines


def test_session_answers_an_unterminated_last_line_at_eof() -> None:
    s = UpperSession(4, log_lines=True)
    assert s.receive(b"ok\nabcd") == b"OK\n" and s.end is None
    assert s.receive(b"") == b"ABCD" and s.end == "eof"  # no ending was sent, none added
    assert s.lines == 2 and s.take_heard() == [b"ok", b"abcd"]
    t = UpperSession(4, log_lines=True)
    assert t.receive(b"abcd\r") == b"" and t.receive(b"") == b"ABCD\r"
    assert t.take_heard() == [b"abcd"]
    u = UpperSession(4)
    assert u.receive(b"abcde") == too_long_reply(4) and u.receive(b"") == b""  # past the cap


def test_session_too_long_line_gets_an_error_reply() -> None:
    s = UpperSession(4)
    assert s.receive(b"ok\n12345") == b"OK\n" + too_long_reply(4)
    assert s.end == "line too long"


@settings(max_examples=examples(100), deadline=None)
@given(splits())
def test_session_replies_do_not_depend_on_the_split(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    one = UpperSession(8)
    whole = (one.receive(data) if data else b"") + one.receive(b""), one.end
    s = UpperSession(8)
    replies = b""
    for chunk in filter(None, chunks):  # b"" is EOF, never a split
        replies += s.receive(chunk)
    replies += s.receive(b"")
    assert (replies, s.end) == whole


def test_line_deadline_starts_with_a_line_and_again_after_each() -> None:
    from netkit.services.modes.base import LineDeadline

    s, line = UpperSession(100), LineDeadline(2.0)
    s.receive(b"ab")
    assert line.update(s, 10.0) == 12.0
    s.receive(b"c")
    assert line.update(s, 11.0) == 12.0  # the same line: the same deadline
    s.receive(b"\nde")
    assert line.update(s, 11.5) == 13.5  # a line completed, another begun
    s.receive(b"\n")
    assert line.update(s, 12.0) is None  # nothing pending: only the idle timeout counts


def test_echo_session_echoes_every_byte_at_once_and_only_eof_ends_it() -> None:
    from netkit.protocols.upper import EchoSession

    s = EchoSession(4, log_lines=True)
    assert s.receive(b"ab\n\ncdefgh") == b"ab\n\ncdefgh" and s.end is None  # empty line too
    assert not s.idle  # a line is incomplete
    assert s.receive(b"i\r\n") == b"i\r\n" and s.idle
    assert s.receive(b"") == b"" and s.end == "eof"
    assert s.lines == 3 and s.take_heard() == [b"ab", b"", b"cdef"]  # logged up to the cap


@settings(max_examples=examples(100), deadline=None)
@given(splits(), st.booleans(), st.booleans())
def test_steady_is_idle_not_ended_and_nothing_to_log(
    case: tuple[bytes, list[bytes]], echo: bool, log_lines: bool
) -> None:
    # the async mode tests only `steady` after each chunk, and sends the
    # reply when it is true: it must say exactly that, in any split
    from netkit.protocols.upper import EchoSession

    s = (EchoSession if echo else UpperSession)(8, log_lines=log_lines)
    assert s.steady is not log_lines
    for chunk in [*filter(None, case[1]), b""]:
        reply = s.receive(chunk)
        assert s.steady == (s.idle and s.end is None and not log_lines)
        if s.steady:
            assert reply  # every byte taken was in a whole line, answered

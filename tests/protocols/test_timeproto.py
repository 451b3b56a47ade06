"""RFC 868 conversion both ways (with the 2036 wrap) and daytime text."""

from __future__ import annotations

import calendar
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import timeproto as tp
from tests.profiles import examples


def utc(*args: int) -> int:
    return calendar.timegm((*args, 0, 0, 0))


def test_known_values() -> None:
    assert tp.to_rfc868(0) == 2_208_988_800  # 1970-01-01
    assert tp.from_rfc868(2_208_988_800, reference=0) == 0
    assert tp.pack_rfc868(0) == bytes.fromhex("83aa7e80")
    assert tp.WRAP_UNIX == utc(2036, 2, 7, 6, 28, 16)
    # the field rolls over to 0 on 2036-02-07 06:28:16 UTC
    assert tp.to_rfc868(tp.WRAP_UNIX - 1) == 2**32 - 1
    assert tp.to_rfc868(tp.WRAP_UNIX) == 0
    assert tp.to_rfc868(tp.WRAP_UNIX + 5) == 5


def test_after_the_wrap_small_values_are_read_in_the_next_era() -> None:
    after = tp.WRAP_UNIX + 100
    assert tp.from_rfc868(100, reference=after + 3) == after
    # and a value from just before the wrap, read just after it, stays in 2036
    assert tp.from_rfc868(2**32 - 10, reference=tp.WRAP_UNIX + 10) == tp.WRAP_UNIX - 10


@settings(max_examples=examples(500), deadline=None)
@given(
    st.integers(min_value=-(2**31), max_value=2**34),
    st.integers(min_value=-(2**30), max_value=2**30),
)
def test_round_trip_near_the_reference(unix: int, skew: int) -> None:
    value = tp.to_rfc868(unix)
    assert 0 <= value < 2**32
    assert tp.from_rfc868(value, reference=unix + skew) == unix
    assert tp.unpack_rfc868(tp.pack_rfc868(unix)) == value


@given(st.floats(min_value=0, max_value=2**33, allow_nan=False))
def test_fractions_are_dropped(unix: float) -> None:
    assert tp.to_rfc868(unix) == tp.to_rfc868(int(unix))


def test_unpack_rejects_short_and_long_replies() -> None:
    with pytest.raises(ValueError, match="short"):
        tp.unpack_rfc868(b"\x01\x02")
    with pytest.raises(ValueError, match="oversized"):
        tp.unpack_rfc868(b"\x01\x02\x03\x04\x05")
    with pytest.raises(ValueError):
        tp.from_rfc868(2**32, reference=0)


def test_daytime_is_ctime_with_crlf() -> None:
    now = 1_700_000_000
    assert tp.daytime(now) == time.ctime(now).encode() + b"\r\n"


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_daytime_reads_back_as_local_time(unix: int) -> None:
    text = tp.daytime(unix).decode().rstrip("\r\n")
    read, how = tp.parse_daytime(text)
    assert how == "no zone given: read as local time"
    assert read is not None and abs(read - unix) <= 3600  # DST folds may shift an hour
    assert time.localtime(read)[:6] == time.localtime(unix)[:6] or abs(read - unix) == 3600


def test_daytime_formats() -> None:
    assert tp.parse_daytime("25 NOV 2026 18:49:27 UTC") == (utc(2026, 11, 25, 18, 49, 27), "UTC")
    assert tp.parse_daytime("Wed, 25 Nov 2026 18:49:27 GMT")[0] == utc(2026, 11, 25, 18, 49, 27)
    assert tp.parse_daytime("tea time")[0] is None

"""udp-echo: reply rules, the loop guard, the per-source rate limiter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import echo
from netkit.protocols.ratelimit import RateLimiter
from tests.profiles import examples


def test_upper_is_ascii_bytewise() -> None:
    assert echo.reply(b"hello, w\xc3\xb6rld \xff", upper=True) == b"HELLO, W\xc3\xb6RLD \xff"
    assert echo.reply(b"hello", upper=False) == b"hello"


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=300))
def test_reply_never_longer_and_never_fails(data: bytes) -> None:
    for upper in (True, False):
        out = echo.reply(data, upper=upper)
        assert len(out) == len(data)
    assert echo.reply(data, upper=True).lower() == data.lower()


def test_drop_reasons() -> None:
    own = ("127.0.0.1", 11111)
    assert echo.drop_reason(("127.0.0.1", 40000), own) is None
    assert echo.drop_reason(("127.0.0.1", 7), own) == echo.DROP_LOW_PORT
    assert echo.drop_reason(("127.0.0.1", 1023), own) == echo.DROP_LOW_PORT
    assert echo.drop_reason(("127.0.0.1", 1024), own) is None
    assert echo.drop_reason(("127.0.0.1", 11111), own) == echo.DROP_SELF
    assert echo.drop_reason(("127.0.0.2", 11111), own) is None
    assert echo.drop_reason(("10.0.0.1", 11111), ("0.0.0.0", 11111)) == echo.DROP_SELF
    assert echo.drop_reason(("::1", 11111), ("::", 11111)) == echo.DROP_SELF
    assert echo.drop_reason(("::1", 11111), ("::1", 11111)) == echo.DROP_SELF


def test_rate_limiter_per_source() -> None:
    rl = RateLimiter(2)  # 2 a second, burst 2
    assert [rl.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert rl.allow("b", 0.0)  # another source has its own bucket
    assert not rl.allow("a", 0.4)
    assert rl.allow("a", 0.5)  # one token back after half a second


def test_rate_limiter_table_is_bounded() -> None:
    rl = RateLimiter(1, max_sources=100)
    for i in range(1000):
        rl.allow(f"10.0.{i // 256}.{i % 256}", float(i) / 1000)
    assert len(rl) <= 100

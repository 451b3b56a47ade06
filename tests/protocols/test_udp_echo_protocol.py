"""udp-echo: reply rules, the loop guard, the per-source rate limiter."""

from __future__ import annotations

import socket
import struct

import pytest
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


def packed(host: str, port: int, flowinfo: int = 0) -> bytes:
    """A source as a batched reader hands it to EchoPolicy.answer (the socket
    address from its port on: an IPv6 one has its flow information before the host)."""
    if ":" in host:
        return struct.pack("!HI", port, flowinfo) + socket.inet_pton(socket.AF_INET6, host)
    return struct.pack("!H", port) + socket.inet_pton(socket.AF_INET, host)


def test_echo_policy_answers_packed_sources() -> None:
    for own_host in ("127.0.0.1", "::1"):
        own = (own_host, 11111)
        own_packed = packed(own_host, 0)[-(4 if "." in own_host else 16) :]
        upper = echo.EchoPolicy(own, upper=True, own_packed=own_packed)
        plain = echo.EchoPolicy(own, upper=False, own_packed=own_packed)
        other = "127.0.0.2" if "." in own_host else "::2"
        for policy, reply in ((upper, b"HI \xff"), (plain, b"hi \xff")):
            assert policy.answer(packed(other, 40000), b"hi \xff", 0.0) == reply
            assert policy.answer(packed(other, 1023), b"hi", 0.0) == echo.DROP_LOW_PORT
            assert (
                policy.answer(packed(other, 11111), b"hi", 0.0) == b"HI"
                if policy is upper
                else b"hi"
            )
            assert policy.answer(packed(own_host, 11111), b"hi", 0.0) == echo.DROP_SELF
            if ":" in own_host:  # the flow information is not part of the host
                assert policy.answer(packed(own_host, 11111, 7), b"hi", 0.0) == echo.DROP_SELF
            assert policy.answer(packed(own_host, 11112), b"", 0.0) == b""
    wildcard = echo.EchoPolicy(("0.0.0.0", 11111), upper=True, own_packed=bytes(4))
    assert wildcard.answer(packed("10.0.0.1", 11111), b"hi", 0.0) == echo.DROP_SELF
    with pytest.raises(ValueError, match="own_packed"):
        echo.EchoPolicy(("127.0.0.1", 11111), upper=True, own_packed=b"")


def test_echo_policy_stops_a_peer_that_echoes_our_replies() -> None:
    policy = echo.EchoPolicy(("127.0.0.1", 11111), upper=True, own_packed=bytes([127, 0, 0, 1]))
    peer, other = packed("127.0.0.1", 40000), packed("127.0.0.1", 40001)
    # a client sending the same request at once is answered each time
    assert {policy.answer(other, b"ping", i / 1000) for i in range(200)} == {b"PING"}
    # a peer that sends back our last reply at once, again and again, is not
    got = [policy.answer(peer, b"PING" if i else b"ping", i / 1000) for i in range(200)]
    assert got[: echo.LOOP_STREAK] == [b"PING"] * echo.LOOP_STREAK
    assert got[echo.LOOP_STREAK] == echo.DROP_LOOP
    assert policy.answer(peer, b"PING", 1.0) == b"PING"  # a second later: answered again


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


def test_loop_guard_sees_a_peer_that_upper_cases_our_replies() -> None:
    guard = echo.LoopGuard(streak=3, window=1.0)
    peer = ("127.0.0.1", 40000)
    seen = []
    for i in range(4):
        seen.append(guard.looped(peer, b"Wed Dec  2" if i == 0 else b"WED DEC  2", float(i)))
        guard.sent(peer, b"Wed Dec  2", float(i))  # a time server's reply, every time
    assert seen == [False, False, False, True]


def test_loop_guard_with_repeats_sees_a_peer_repeating_itself_at_once() -> None:
    peer = ("127.0.0.1", 40000)
    for repeats, expected in ((False, [False] * 4), (True, [False, False, False, True])):
        guard = echo.LoopGuard(streak=3, window=1.0, repeats=repeats)
        seen = []
        for i in range(4):
            seen.append(guard.looped(peer, b"\x00\x01\x02\x03", float(i)))
            guard.sent(peer, b"Wed Dec  2 13:00:00 2026\r\n", float(i))
        assert seen == expected


def test_loop_guard_leaves_a_lock_step_client_alone() -> None:
    # "ping" sent again at once after each "PING": not our reply, nor its upper case
    guard = echo.LoopGuard(streak=3, window=1.0)
    peer = ("127.0.0.1", 40000)
    for i in range(10):
        assert not guard.looped(peer, b"ping", float(i))
        guard.sent(peer, b"PING", float(i))


def test_loop_guard_needs_the_answers_back_to_back() -> None:
    guard = echo.LoopGuard(streak=3, window=0.05)
    peer = ("127.0.0.1", 40000)
    for i in range(10):  # our own reply, but a second after it: a client's retry
        assert not guard.looped(peer, b"HI", float(i))
        guard.sent(peer, b"HI", float(i))


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from(["upper", "plain", "fixed"]),
    st.booleans(),
    st.lists(
        st.tuples(
            st.integers(0, 2),  # which peer
            st.sampled_from(["last reply", "its upper case", "last datagram", "new"]),
            st.binary(max_size=6),
            st.sampled_from([0.0, 0.01, 0.2]),  # time since the previous datagram
        ),
        max_size=60,
    ),
)
def test_loop_guard_check_is_looped_then_sent(
    server: str, repeats: bool, steps: list[tuple[int, str, bytes, float]]
) -> None:
    """check() (one look-up, what the servers call) decides as looped() and sent() do."""
    one = echo.LoopGuard(streak=3, window=0.05, repeats=repeats)
    two = echo.LoopGuard(streak=3, window=0.05, repeats=repeats)
    replies: dict[int, bytes] = {}
    sent: dict[int, bytes] = {}
    now = 0.0
    for peer, kind, new, dt in steps:
        now += dt
        last = replies.get(peer, b"x")
        data = {
            "last reply": last,
            "its upper case": last.upper(),
            "last datagram": sent.get(peer, b"y"),
            "new": new,
        }[kind]
        reply = {"upper": data.upper(), "plain": data, "fixed": b"Wed Dec  2"}[server]
        looped = two.looped(peer, data, now)
        if not looped:
            two.sent(peer, reply, now)
        upper = reply if server == "upper" else None
        assert one.check(peer, data, reply, now, upper) == looped
        sent[peer] = data
        if not looped:
            replies[peer] = reply


def test_drop_notice_reads_cleanly() -> None:
    """Issue 14 item 8: one level of parentheses, a count with its noun, '; ' between reasons."""
    assert all("(" not in why and ")" not in why for why in echo.DROP_REASONS.values())
    counts = dict.fromkeys(echo.DROP_REASONS, 0)
    counts[echo.DROP_RATE] = 3
    assert echo.drop_notice(counts) == "not answered: 3 datagrams (source over its --rate limit)"
    counts[echo.DROP_LOW_PORT] = 1
    assert echo.drop_notice(counts) == (
        "not answered: 1 datagram (source port below 1024, another server's: a reply could "
        "loop); 3 datagrams (source over its --rate limit)"
    )

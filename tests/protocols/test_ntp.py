"""NTP/SNTP sans-IO: timestamps across eras, packets, the client's checks, the responder, encode."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netkit.protocols import ntp, timecodes

ERA1 = ntp.ERA1_UNIX  # 2036-02-07T06:28:16Z
NONCE = 0x0123_4567_89AB_CDEF
HALF_ERA = ntp.ERA_SECONDS // 2


def test_the_era_boundary_is_2036_02_07T06_28_16Z() -> None:
    assert timecodes.iso(ERA1) == "2036-02-07T06:28:16Z"
    assert ntp.to_ntp(ERA1) == 0
    assert ntp.to_ntp(ERA1 - 1) == 0xFFFF_FFFF << 32
    assert ntp.ntp_era(ERA1 - 1) == 0 and ntp.ntp_era(ERA1) == 1
    # just after the wrap, read with a clock just before it: era 1, not 1900
    assert ntp.from_ntp(ntp.to_ntp(ERA1 + 5), ERA1 - 5) == ERA1 + 5
    assert ntp.from_ntp(ntp.to_ntp(ERA1 - 5), ERA1 + 5) == ERA1 - 5
    assert ntp.from_ntp(0x8000_0000 << 32, 0) == 0x8000_0000 - ntp.NTP_UNIX_OFFSET


def test_known_timestamps() -> None:
    assert ntp.to_ntp(0) == ntp.NTP_UNIX_OFFSET << 32
    assert ntp.split(ntp.to_ntp(0.5)) == (ntp.NTP_UNIX_OFFSET, 1 << 31)
    assert ntp.to_ntp(-ntp.NTP_UNIX_OFFSET) == 0  # 1900-01-01, era 0 begins


@given(
    unix=st.floats(min_value=-ntp.NTP_UNIX_OFFSET, max_value=ERA1 + 3 * ntp.ERA_SECONDS),
    skew=st.floats(min_value=-(HALF_ERA - 2), max_value=HALF_ERA - 2),
)
def test_timestamps_round_trip_in_any_era_within_68_years_of_the_clock(
    unix: float, skew: float
) -> None:
    back = ntp.from_ntp(ntp.to_ntp(unix), unix + skew)
    assert abs(back - unix) < 1e-6 * max(1.0, abs(unix) / 1e9) + 1e-6


@given(
    seconds=st.integers(0, 0xFFFF_FFFF),
    fraction=st.integers(0, 0xFFFF_FFFF),
    era=st.integers(-1, 3),
)
def test_wire_timestamps_round_trip(seconds: int, fraction: int, era: int) -> None:
    stamp = seconds << 32 | fraction
    unix = ntp.from_ntp(stamp, era * ntp.ERA_SECONDS + seconds - ntp.NTP_UNIX_OFFSET)
    assert ntp.ntp_era(unix + 1e-3) in (era, era + 1)
    again = ntp.to_ntp(unix)
    # Unix time is a float: good to a few microseconds (2^14 units of 2^-32 s = 3.8 us)
    assert abs(((again - stamp + (1 << 63)) % (1 << 64)) - (1 << 63)) < 1 << 14


@pytest.mark.parametrize(
    ("t1", "t2", "t3", "t4", "offset", "delay"),
    [
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        # server 10 s ahead, 0.2 s each way, 0.1 s in the server
        (100.0, 110.2, 110.3, 100.5, 10.0, 0.4),
        # server 1 s behind, 0.3 s out, 0.1 s back: the offset errs by half the asymmetry
        (50.0, 49.3, 49.3, 50.4, -0.9, 0.4),
        # server far ahead across the era: the formula does not care about the era
        (ERA1 - 1.0, ERA1 + 1.0, ERA1 + 1.0, ERA1 - 0.5, 1.75, 0.5),
    ],
)
def test_offset_and_delay_hand_computed(
    t1: float, t2: float, t3: float, t4: float, offset: float, delay: float
) -> None:
    got_offset, got_delay = ntp.offset_delay(t1, t2, t3, t4)
    assert got_offset == pytest.approx(offset, abs=1e-9)
    assert got_delay == pytest.approx(delay, abs=1e-9)


@given(
    t1=st.floats(0, 1e9),
    out=st.floats(0, 10),
    back=st.floats(0, 10),
    hold=st.floats(0, 1),
    theta=st.floats(-1e6, 1e6),
)
def test_symmetric_paths_give_the_true_offset(
    t1: float, out: float, back: float, hold: float, theta: float
) -> None:
    t2 = t1 + out + theta
    t3 = t2 + hold
    t4 = t1 + out + hold + back
    offset, delay = ntp.offset_delay(t1, t2, t3, t4)
    assert delay == pytest.approx(out + back, abs=1e-3)
    assert offset == pytest.approx(theta + (out - back) / 2, abs=1e-3)


def test_packet_round_trip_and_layout() -> None:
    pkt = ntp.Packet(
        leap=1,
        version=4,
        mode=4,
        stratum=2,
        poll=6,
        precision=-20,
        root_delay=1,
        root_dispersion=2,
        refid=b"LOCL",
        reference=3,
        originate=4,
        receive=5,
        transmit=6,
    )
    data = pkt.encode()
    assert len(data) == 48
    assert data[0] == 0b01_100_100
    assert data[12:16] == b"LOCL"
    assert ntp.Packet.decode(data) == pkt
    assert ntp.Packet.decode(data + b"extension") == pkt
    with pytest.raises(ValueError, match="truncated: 47 bytes"):
        ntp.Packet.decode(data[:47])


def test_request_carries_only_the_nonce() -> None:
    req = ntp.Packet.decode(ntp.request(NONCE))
    assert (req.mode, req.version, req.transmit, req.originate, req.receive) == (3, 4, NONCE, 0, 0)


def good(**changes: object) -> bytes:
    fields: dict[str, object] = dict(
        leap=0,
        version=4,
        mode=4,
        stratum=2,
        refid=b"\x7f\0\0\1",
        originate=NONCE,
        receive=ntp.to_ntp(1e9),
        transmit=ntp.to_ntp(1e9 + 1e-4),
        root_dispersion=10,
    )
    fields.update(changes)
    return ntp.Packet(**fields).encode()  # type: ignore[arg-type]


def test_a_good_reply_is_accepted() -> None:
    assert ntp.check_reply(good(), NONCE).stratum == 2
    assert ntp.check_reply(good(version=3), NONCE).version == 3


@pytest.mark.parametrize(
    ("reply", "reason", "ignore"),
    [
        (good()[:47], "truncated: 47 bytes", False),
        (good(mode=3), "mode 3 (client) packet", False),
        (good(mode=5), "mode 5 (broadcast)", False),
        (good(version=2), "NTP version 2", False),
        (good(version=5), "NTP version 5", False),
        (good(originate=0), "originate timestamp 0 is not our transmit timestamp", True),
        (good(originate=NONCE + 1), "not an answer to this request", True),
        (good(stratum=16), "stratum 16: the server says it is not synchronised", False),
        (good(stratum=200), "stratum 200: not defined", False),
        (good(leap=3), "leap indicator 3", False),
        (good(transmit=0), "transmit timestamp 0", False),
        (good(receive=0), "receive timestamp 0", False),
        (good(root_dispersion=2 << 16), "root distance 2.000 s", False),
    ],
)
def test_every_bad_reply_is_rejected_with_its_reason(
    reply: bytes, reason: str, ignore: bool
) -> None:
    with pytest.raises(ntp.ReplyRejected, match=re.escape(reason)) as info:
        ntp.check_reply(reply, NONCE)
    assert info.value.ignore is ignore
    assert not isinstance(info.value, ntp.KissOfDeath)


@pytest.mark.parametrize(
    ("code", "fatal"), [("DENY", True), ("RSTR", True), ("RATE", False), ("XYZZ", True)]
)
def test_kiss_of_death(code: str, fatal: bool) -> None:
    with pytest.raises(ntp.KissOfDeath, match=f"kiss-o'-death {code}") as info:
        ntp.check_reply(good(stratum=0, leap=3, refid=code.encode()), NONCE)
    assert info.value.code == code and info.value.fatal is fatal


def test_a_kiss_of_death_with_a_wrong_originate_is_ignored_not_obeyed() -> None:
    with pytest.raises(ntp.ReplyRejected) as info:
        ntp.check_reply(good(stratum=0, refid=b"DENY", originate=1), NONCE)
    assert info.value.ignore and not isinstance(info.value, ntp.KissOfDeath)


def test_refid_text_and_parse() -> None:
    assert ntp.refid_text(1, b"GPS\0") == "GPS"
    assert ntp.refid_text(2, b"\x7f\0\0\1") == "127.0.0.1"
    assert ntp.refid_text(16, b"INIT") == "INIT"
    assert ntp.parse_refid("locl") == b"LOCL"
    assert ntp.parse_refid("GPS") == b"GPS\0"
    assert ntp.parse_refid("192.0.2.1") == bytes([192, 0, 2, 1])
    for bad in ("", "TOOLONG", "a b", "é"):
        with pytest.raises(ValueError, match="reference id"):
            ntp.parse_refid(bad)


def answer(r: ntp.Responder, data: bytes, port: int = 40000, now: float = 0.0) -> ntp.Answer:
    return r.respond(data, port, ("127.0.0.1", port), now, 1e9, 1e9 + 1e-5)


def test_the_default_server_says_it_is_unsynchronised() -> None:
    a = answer(ntp.Responder(), ntp.request(NONCE))
    assert a.kind == "reply" and a.reply is not None and len(a.reply) == 48
    pkt = ntp.Packet.decode(a.reply)
    assert (pkt.leap, pkt.stratum, pkt.mode, pkt.originate) == (3, 16, 4, NONCE)
    with pytest.raises(ntp.ReplyRejected, match="stratum 16"):
        ntp.check_reply(a.reply, NONCE)


def test_a_claimed_stratum_is_exactly_that() -> None:
    r = ntp.Responder(stratum=2, refid=b"LOCL", started=1e9 - 60)
    a = answer(r, ntp.request(NONCE, version=3))
    assert a.reply is not None
    pkt = ntp.check_reply(a.reply, NONCE)
    assert (pkt.leap, pkt.stratum, pkt.refid, pkt.version) == (0, 2, b"LOCL", 3)
    assert ntp.from_ntp(pkt.receive, 1e9) == pytest.approx(1e9)
    assert ntp.from_ntp(pkt.transmit, 1e9) == pytest.approx(1e9 + 1e-5)
    assert ntp.from_ntp(pkt.reference, 1e9) == pytest.approx(1e9 - 60)
    with pytest.raises(ValueError, match="stratum must be 1-15"):
        ntp.Responder(stratum=16)


@pytest.mark.parametrize(
    ("data", "port", "kind"),
    [
        (ntp.request(NONCE), 1023, "loop"),
        (ntp.request(NONCE), 53, "loop"),
        (ntp.request(NONCE)[:47], 40000, "short"),
        (b"", 40000, "short"),
        (good(), 40000, "mode"),  # a mode-4 packet: never answer a server (loops)
        (bytes([0b00_100_110]) + bytes(47), 40000, "mode"),  # mode 6 (ntpq)
        (bytes([0b00_100_111]) + bytes(47), 40000, "mode"),  # mode 7 (ntpdc monlist)
        (bytes([0b00_000_011]) + bytes(47), 40000, "version"),
        (bytes([0b00_111_011]) + bytes(47), 40000, "version"),
    ],
)
def test_the_server_drops_what_it_must_not_answer(data: bytes, port: int, kind: str) -> None:
    a = answer(ntp.Responder(stratum=2), data, port)
    assert (a.reply, a.kind) == (None, kind)
    assert a.reason


@given(extra=st.binary(max_size=200), first=st.integers(0, 255))
def test_never_more_bytes_out_than_in(extra: bytes, first: int) -> None:
    data = bytes([first]) + bytes(47) + extra
    a = answer(ntp.Responder(stratum=3), data, 123)
    assert a.reply is None or len(a.reply) == 48 <= len(data)


def test_port_123_is_answered() -> None:
    assert answer(ntp.Responder(), ntp.request(NONCE), 123).kind == "reply"


def test_rate_limit_answers_rate_then_nothing() -> None:
    r = ntp.Responder(stratum=2, rate=10)
    kinds = [answer(r, ntp.request(NONCE), now=0.0).kind for _ in range(100)]
    assert kinds.count("reply") == 10
    assert kinds.count("kod") == 1
    assert kinds.count("rate") == 89
    kod = answer(ntp.Responder(stratum=2, rate=1), ntp.request(NONCE))
    assert kod.kind == "reply"
    r1 = ntp.Responder(stratum=2, rate=1)
    answer(r1, ntp.request(NONCE))
    k = answer(r1, ntp.request(NONCE))
    assert k.kind == "kod" and k.reply is not None
    with pytest.raises(ntp.KissOfDeath, match="RATE"):
        ntp.check_reply(k.reply, NONCE)
    # a second later the source has a token again
    assert answer(r1, ntp.request(NONCE), now=1.0).kind == "reply"


# --------------------------------------------------------------------------
# encode


def test_encode_at_the_ntp_and_rfc868_rollover() -> None:
    e = timecodes.encode(ERA1)
    assert e["iso"] == "2036-02-07T06:28:16Z"
    assert e["rfc868"] == {
        "value": 0,
        "bytes": "00 00 00 00",
        "era": 1,
        "wraps": "2172-03-15T12:56:32Z",
    }
    assert e["ntp"]["seconds"] == 0 and e["ntp"]["era"] == 1
    assert e["ntp"]["era_began"] == "2036-02-07T06:28:16Z"
    before = timecodes.encode(ERA1 - 0.5)
    assert before["rfc868"]["value"] == 0xFFFF_FFFF and before["rfc868"]["wraps"] == e["iso"]
    assert before["ntp"]["bytes"] == "ff ff ff ff 80 00 00 00"
    assert before["ntp"]["era"] == 0 and before["ntp"]["next_era"] == e["iso"]


def test_encode_at_the_time_t32_rollover() -> None:
    last = timecodes.encode((1 << 31) - 1)
    assert last["iso"] == "2038-01-19T03:14:07Z"
    assert last["time_t32"] == {
        "value": (1 << 31) - 1,
        "bytes": "7f ff ff ff",
        "wraps": "2038-01-19T03:14:08Z",
    }
    gone = timecodes.encode(1 << 31)
    assert gone["time_t32"]["value"] is None and gone["time_t32"]["bytes"] is None
    assert gone["rfc868"]["era"] == 1


def test_encode_at_the_epochs() -> None:
    unix0 = timecodes.encode(0)
    assert unix0["rfc868"]["value"] == ntp.NTP_UNIX_OFFSET
    assert unix0["rfc868"]["bytes"] == "83 aa 7e 80"
    assert unix0["time_t32"]["bytes"] == "00 00 00 00"
    ntp0 = timecodes.encode(-ntp.NTP_UNIX_OFFSET)
    assert ntp0["iso"] == "1900-01-01T00:00:00Z"
    assert ntp0["ntp"]["bytes"] == "00 00 00 00 00 00 00 00" and ntp0["ntp"]["era"] == 0
    assert ntp0["time_t32"]["value"] is None  # before 1901-12-13T20:45:52Z


def test_parse_when() -> None:
    assert timecodes.parse_when("2036-02-07T06:28:16Z") == ERA1
    assert timecodes.parse_when("2036-02-07T07:28:16+01:00") == ERA1
    assert timecodes.parse_when("2036-02-07 06:28:16") == ERA1  # no zone: UTC
    assert timecodes.parse_when("1700000000.5") == 1700000000.5
    assert timecodes.parse_when("-1") == -1
    for bad in ("yesterday", "2036-13-01", "1e300", "99999999999999"):
        with pytest.raises(ValueError):
            timecodes.parse_when(bad)


@given(st.floats(min_value=timecodes.MIN_UNIX, max_value=timecodes.MAX_UNIX - 1))
def test_encode_agrees_with_itself(unix: float) -> None:
    e = timecodes.encode(unix)
    stamp = int(e["ntp"]["bytes"].replace(" ", ""), 16)
    assert ntp.from_ntp(stamp, unix) == pytest.approx(unix, abs=1e-3)
    assert e["rfc868"]["value"] == e["ntp"]["seconds"]
    assert timecodes.parse_when(e["iso"]) == pytest.approx(unix, abs=1e-6)


@given(st.binary(max_size=120), st.integers(0, (1 << 64) - 1))
def test_any_bytes_are_accepted_or_rejected_with_a_reason(data: bytes, nonce: int) -> None:
    try:
        pkt = ntp.check_reply(data, nonce)
    except ntp.ReplyRejected as exc:
        assert str(exc)
    else:
        assert pkt.originate == nonce and 1 <= pkt.stratum <= 15 and pkt.mode == 4


def test_root_distance_hand_computed() -> None:
    pkt = ntp.Packet(root_delay=1 << 16, root_dispersion=1 << 15, precision=-10)
    # (0.2 + 1) / 2 + 0.5 + 2^-10 + 15e-6 * 0.3
    assert ntp.root_distance(0.2, 0.3, pkt) == pytest.approx(0.6 + 0.5 + 2**-10 + 4.5e-6)

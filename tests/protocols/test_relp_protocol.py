"""RELP (sans-IO): frames, the response parser in any chunking, bounds, the client session."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import relp
from netkit.protocols.relp import (
    Acked,
    Closed,
    Frame,
    FrameParser,
    Opened,
    Refused,
    RelpError,
    RelpSession,
    ServerClosed,
)
from tests.profiles import examples

# what rsyslog 8.2302's imrelp (librelp 1.11) answers to netkit's open, byte for byte:
# b"1 rsp 93 " + LIBRELP_OFFERS + b"\n"; its answer to close is b"N rsp 0\n" (no status)
LIBRELP_OFFERS = (
    b"200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\n"
    b"commands=syslog"
)


def rsp(txnr: int, data: bytes) -> bytes:
    return relp.encode_frame(txnr, "rsp", data)


def test_frames_are_encoded_as_the_spec_says() -> None:
    assert relp.encode_frame(1, "open", relp.OFFERS) == (
        b"1 open 51 relp_version=0\nrelp_software=netkit\ncommands=syslog\n"
    )
    assert relp.encode_frame(7, "syslog", b"<14>1 - h a - - - hi") == (
        b"7 syslog 20 <14>1 - h a - - - hi\n"
    )
    assert relp.encode_frame(3, "close") == b"3 close 0\n"
    assert relp.encode_frame(0, "serverclose") == b"0 serverclose 0\n"
    assert relp.encode_frame(999_999_999, "rsp", b"200 OK") == b"999999999 rsp 6 200 OK\n"


@pytest.mark.parametrize(
    ("txnr", "command"),
    [(-1, "syslog"), (1_000_000_000, "syslog"), (1, ""), (1, "sys log"), (1, "x" * 33), (1, "é")],
)
def test_frames_that_cannot_be_written(txnr: int, command: str) -> None:
    with pytest.raises(ValueError):
        relp.encode_frame(txnr, command, b"x")


def test_transaction_numbers_run_from_1_to_999999999_and_wrap_to_1() -> None:
    assert relp.next_txnr(0) == 1
    assert relp.next_txnr(1) == 2
    assert relp.next_txnr(999_999_998) == 999_999_999
    assert relp.next_txnr(999_999_999) == 1


def test_a_stream_of_responses_and_the_serverclose_hint() -> None:
    assert len(LIBRELP_OFFERS) == 93
    stream = rsp(1, LIBRELP_OFFERS) + rsp(2, b"200 OK") + rsp(3, b"500 command disabled")
    stream += b"0 serverclose 0\n"
    frames = FrameParser().feed(stream)
    assert frames == [
        Frame(1, "rsp", LIBRELP_OFFERS),
        Frame(2, "rsp", b"200 OK"),
        Frame(3, "rsp", b"500 command disabled"),
        Frame(0, "serverclose"),
    ]
    first = relp.parse_response(frames[0])
    assert (first.code, first.text, first.ok) == (200, "OK", True)
    assert relp.parse_offers(first.data) == {
        "relp_version": ["0"],
        "relp_software": ["librelp", "1.11.0", "http://librelp.adiscon.com"],
        "commands": ["syslog"],
    }
    error = relp.parse_response(frames[2])
    assert (error.code, error.text, error.ok, error.data) == (500, "command disabled", False, b"")


def test_data_may_hold_newlines_spaces_and_anything() -> None:
    data = b"1 rsp 5 \n\n \x00\xff" * 3
    assert FrameParser().feed(relp.encode_frame(5, "rsp", data)) == [Frame(5, "rsp", data)]


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"x rsp 6 200 OK\n", "malformed RELP frame header"),
        (b"1234567890 rsp 6 200 OK\n", "malformed RELP frame header"),
        (b"1 " + b"r" * 33 + b" 6 200 OK\n", "malformed RELP frame header"),
        (b"1 rsp 1234567890 ", "malformed RELP frame header"),
        (b"1 rsp -6 200 OK\n", "malformed RELP frame header"),
        (b"1 rsp6 200 OK\n", "malformed RELP frame header"),
        (b"1\trsp 6 200 OK\n", "malformed RELP frame header"),
        (b"1 rsp 6 200 OKX", "no LF after 6 bytes"),
        (b"1 rsp 6\n", "DATALEN 6 but no data"),
        (b"1 rsp 0 \n", "DATALEN 0 then data"),
        (b"1 rsp 999999999 ", "over the limit of 131072"),
    ],
)
def test_malformed_streams_are_refused_with_a_reason(stream: bytes, reason: str) -> None:
    parser = FrameParser()
    with pytest.raises(RelpError, match=reason):
        parser.feed(stream)
    with pytest.raises(RelpError, match=reason):  # the stream has lost its framing for good
        parser.feed(b"2 rsp 6 200 OK\n")


def test_an_oversized_frame_is_refused_when_its_header_arrives() -> None:
    parser = FrameParser(max_data=100)
    assert parser.feed(b"1 rsp 100 " + b"x" * 100 + b"\n") == [Frame(1, "rsp", b"x" * 100)]
    with pytest.raises(RelpError, match="RELP frame of 101 bytes"):
        parser.feed(b"2 rsp 101 ")  # nothing of its data has to arrive
    assert parser.pending == 0


def test_a_header_is_refused_as_soon_as_it_cannot_become_valid() -> None:
    parser = FrameParser()
    assert parser.feed(b"12") == [] and parser.feed(b" rs") == [] and parser.feed(b"p 6") == []
    assert parser.pending == 8
    with pytest.raises(RelpError):
        parser.feed(b"!")


def test_a_rsp_without_a_status_code_is_refused() -> None:
    for data in (b"OK", b"20 OK", b"2000 OK", b""):
        with pytest.raises(RelpError, match="no status code"):
            relp.parse_response(Frame(1, "rsp", data))


# -- any chunking parses the same ------------------------------------------------------------

_data = st.one_of(
    st.sampled_from([b"200 OK", b"500 error", LIBRELP_OFFERS, b""]),
    st.binary(max_size=40),
    st.lists(st.sampled_from([b"1", b" ", b"\n", b"rsp", b"\x00", b"\xff"]), max_size=20).map(
        b"".join
    ),
)
_frames = st.lists(
    st.builds(
        Frame,
        st.integers(0, relp.MAX_TXNR),
        st.sampled_from(["rsp", "serverclose", "syslog", "X" * 32]),
        _data,
    ),
    max_size=12,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    out, start = [], 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out.append(data[start:cut])
        start = cut
    return out


@settings(max_examples=examples(300), deadline=None)
@given(_frames, st.lists(st.integers(0, 10_000), max_size=30))
def test_any_chunking_of_a_valid_stream_parses_the_same(
    frames: list[Frame], cuts: list[int]
) -> None:
    stream = b"".join(relp.encode_frame(f.txnr, f.command, f.data) for f in frames)
    parser = FrameParser()
    got: list[Frame] = []
    for chunk in _chunks(stream, cuts):
        got.extend(parser.feed(chunk))
    assert got == frames
    assert parser.pending == 0
    assert FrameParser().feed(stream) == frames  # all at once
    one_by_one = FrameParser()
    assert [f for i in range(len(stream)) for f in one_by_one.feed(stream[i : i + 1])] == frames


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 1000), max_size=10))
def test_garbage_is_refused_or_framed_and_never_buffered_past_one_frame(
    data: bytes, cuts: list[int]
) -> None:
    parser = FrameParser(max_data=64)
    try:
        for chunk in _chunks(data, cuts):
            for frame in parser.feed(chunk):
                assert len(frame.data) <= 64 and 0 <= frame.txnr <= relp.MAX_TXNR
            assert parser.pending <= 64 + 53 + 1
    except RelpError as exc:
        assert "RELP" in str(exc) and "\n" not in str(exc)


# -- the client session --------------------------------------------------------------------


def opened_session(window: int = relp.WINDOW) -> RelpSession:
    session = RelpSession(window)
    assert session.open() == relp.encode_frame(1, "open", relp.OFFERS)
    assert session.state == "opening" and not session.can_send
    events = session.receive(rsp(1, LIBRELP_OFFERS))
    assert events == [Opened(relp.parse_offers(LIBRELP_OFFERS.split(b"\n", 1)[1]))]
    assert session.state == "open" and session.can_send
    return session


def test_a_session_from_open_to_close() -> None:
    session = opened_session()
    assert session.syslog(b"one") == (2, b"2 syslog 3 one\n")
    assert session.syslog(b"two") == (3, b"3 syslog 3 two\n")
    assert session.outstanding == 2
    assert session.receive(rsp(2, b"200 OK") + rsp(3, b"500 nope")) == [
        Acked(2),
        Refused(3, 500, "nope"),
    ]
    assert session.close() == b"4 close 0\n"
    assert not session.can_send
    assert session.receive(b"4 rsp 0\n0 serverclose 0\n") == [Closed(), ServerClosed()]
    assert session.state == "closed" and session.outstanding == 0


def test_the_window_bounds_what_is_outstanding() -> None:
    session = opened_session(window=3)
    for i in range(3):
        session.syslog(b"%d" % i)
    assert not session.can_send
    with pytest.raises(RuntimeError, match="3 of 3 outstanding"):
        session.syslog(b"more")
    assert session.receive(rsp(2, b"200 OK")) == [Acked(2)]
    assert session.can_send


def test_syslog_waits_for_the_open_response() -> None:
    session = RelpSession()
    with pytest.raises(RuntimeError):
        session.syslog(b"early")
    session.open()
    with pytest.raises(RuntimeError):
        session.syslog(b"early")


def test_responses_out_of_order_or_unasked_are_protocol_errors() -> None:
    session = opened_session()
    session.syslog(b"a")
    session.syslog(b"b")
    with pytest.raises(RelpError, match=r"rsp for txnr 3 while 2 \(syslog\) is the oldest"):
        session.receive(rsp(3, b"200 OK"))
    other = opened_session()
    with pytest.raises(RelpError, match="no command is outstanding"):
        other.receive(rsp(2, b"200 OK"))
    third = opened_session()
    with pytest.raises(RelpError, match="server sent command 'syslog'"):
        third.receive(relp.encode_frame(5, "syslog", b"x"))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"500 error -2 on connect", "refused the session: 500 error -2 on connect"),
        (b"200 OK\ncommands=syslog", "no relp_version offer"),
        (b"200 OK\nrelp_version=0\ncommands=", "does not offer the syslog command"),
    ],
)
def test_an_open_the_server_does_not_accept(answer: bytes, reason: str) -> None:
    session = RelpSession()
    session.open()
    with pytest.raises(RelpError, match=reason):
        session.receive(rsp(1, answer))


def test_serverclose_and_unknown_hints() -> None:
    session = opened_session()
    session.syslog(b"x")
    got = session.receive(b"0 serverclose 0\n" + relp.encode_frame(0, "somehint", b"x"))
    assert got == [ServerClosed()]
    assert session.outstanding == 1  # its record was not answered: it is not delivered


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(1, 300), st.integers(1, 128), st.lists(st.integers(0, 100_000), max_size=40))
def test_every_record_is_acked_once_in_order_whatever_the_chunking(
    n: int, window: int, cuts: list[int]
) -> None:
    session = opened_session(window)
    sent: list[int] = []
    answers = bytearray()
    acked: list[int] = []
    while len(sent) < n or session.outstanding:
        while session.can_send and len(sent) < n:
            txnr, _frame = session.syslog(b"record %d" % len(sent))
            sent.append(txnr)
            answers += rsp(txnr, b"200 OK")
        for chunk in _chunks(bytes(answers), cuts):
            acked.extend(e.txnr for e in session.receive(chunk) if isinstance(e, Acked))
        answers.clear()
    assert acked == sent == list(range(2, n + 2))

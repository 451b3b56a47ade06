"""Syslog parsing: what util-linux logger sends (RFC 3164 and RFC 5424), and edge cases."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols import syslog
from tests.profiles import examples


def test_rfc5424_from_logger() -> None:
    m = syslog.parse(
        b'<13>1 2026-11-25T18:49:08.499073+00:00 vm TAG2 - - [timeQuality tzKnown="1" '
        b'isSynced="0"] msg two'
    )
    assert m is not None
    assert m.as_dict() == {
        "format": "rfc5424",
        "facility": "user",
        "severity": "notice",
        "timestamp": "2026-11-25T18:49:08.499073+00:00",
        "host": "vm",
        "app": "TAG2",
        "procid": None,
        "msgid": None,
        "structured_data": '[timeQuality tzKnown="1" isSynced="0"]',
        "message": "msg two",
    }


def test_rfc5424_all_fields_escaped_sd_and_bom() -> None:
    m = syslog.parse(b'<0>1 - h a 42 ID7 [x@1 a="b\\]c"][y] \xef\xbb\xbfhi there')
    assert m is not None
    assert (m.facility_name, m.severity_name) == ("kern", "emerg")
    assert (m.host, m.app, m.procid, m.msgid) == ("h", "a", "42", "ID7")
    assert m.structured_data == '[x@1 a="b\\]c"][y]'
    assert m.message == b"hi there"


def test_rfc5424_nil_everything() -> None:
    m = syslog.parse(b"<165>1 - - - - - -")
    assert m is not None and m.format == "rfc5424"
    assert (m.facility_name, m.severity_name) == ("local4", "notice")
    assert m.host is None and m.app is None and m.message == b""


def test_rfc3164_from_logger() -> None:
    m = syslog.parse(b"<13>Nov 25 18:49:08 vm tag5[5536]: msg 5")
    assert m is not None
    assert (m.format, m.facility_name, m.severity_name) == ("rfc3164", "user", "notice")
    assert (m.timestamp, m.host, m.app, m.procid) == ("Nov 25 18:49:08", "vm", "tag5", "5536")
    assert m.message == b"msg 5"


def test_rfc3164_local_err_and_without_host() -> None:
    m = syslog.parse(b"<131>Nov  5 01:02:03 app2: hello")
    assert m is not None
    assert (m.facility_name, m.severity_name, m.host, m.app) == ("local0", "err", None, "app2")
    assert m.message == b"hello"


def test_rfc3164_minimal() -> None:
    m = syslog.parse(b"<34>su: 'su root' failed")
    assert m is not None
    assert (m.facility_name, m.severity_name, m.app) == ("auth", "crit", "su")
    assert m.message == b"'su root' failed"


def test_not_syslog() -> None:
    for d in (
        b"hello",
        b"",
        b"<>x",
        b"<192>too big",
        b"<013>leading zero",
        b"<b>bold</b>",
        b" <13>x",
    ):
        assert syslog.parse(d) is None, d


def test_malformed_5424_falls_back_to_3164() -> None:
    m = syslog.parse(b"<13>1 only three fields")
    assert m is not None and m.format == "rfc3164"
    m = syslog.parse(b"<13>1 - h a p m [unterminated sd")
    assert m is not None and m.format == "rfc3164"


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_raises(data: bytes) -> None:
    m = syslog.parse(data)
    if m is not None:
        assert 0 <= m.facility <= 23 and 0 <= m.severity <= 7
        m.as_dict()


@settings(max_examples=examples(100), deadline=None)
@given(
    pri=st.integers(0, 191),
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    app=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    msg=st.binary(max_size=100),
)
def test_rfc5424_fields_round_trip(pri: int, host: str, app: str, msg: bytes) -> None:
    d = b"<%d>1 2026-01-01T00:00:00Z %s %s - - - %s" % (pri, host.encode(), app.encode(), msg)
    m = syslog.parse(d)
    assert m is not None
    assert (m.facility, m.severity) == divmod(pri, 8)
    assert (m.host, m.app) == (host, app)
    assert m.message == (msg[3:] if msg.startswith(b"\xef\xbb\xbf") else msg)

"""The one escaping function and the JSON payload fields."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols.text import decode, escape, payload_bytes, payload_fields

CORPUS = [
    b"\x1b[31mred\x1b[0m",  # CSI
    b"\x1b]0;title\x07",  # OSC 0 ended by BEL
    b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 ended by ST
    b"\x1b]52;c;aGVsbG8=\x07",  # OSC 52 clipboard write
    b"\x1bP1$r\x1b\\",  # DCS
    b"\x9b31m",  # raw C1 CSI (invalid UTF-8 on its own)
    "\u009b31m".encode(),  # C1 CSI in its UTF-8 form
    "a\u202eb\u2066c\u2069".encode(),  # bidi override and isolates
    "pay\u00adpal".encode(),  # soft hyphen: invisible on most terminals
    "ok\U000e0041\U000e0042\U000e007f".encode(),  # tag characters: hidden text
    "\u2061\u2064\u206a\ufff9\U0001d173\U00013430".encode(),  # other format controls
    b"nul\x00byte",
    b"ok\nFAKE 12:00 admin login\r",
    b"\xff\xfe invalid",
    b"[link=http://x]click[/link] [/bold] [/]",
]

FORBIDDEN = {chr(c) for c in range(0x20)} | {chr(0x7F)} | {chr(c) for c in range(0x80, 0xA0)}
BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]}


def assert_inert(text: str) -> None:
    bad = [
        c
        for c in text
        if c in FORBIDDEN or c in BIDI or unicodedata.category(c) in ("Cs", "Cf", "Zl", "Zp")
    ]
    assert bad == [], (text, bad)


def test_corpus_is_escaped_to_one_inert_line() -> None:
    for payload in CORPUS:
        shown = escape(payload)
        assert_inert(shown)
        assert "\n" not in shown and "\r" not in shown


def test_known_escapes() -> None:
    assert escape(b"\x1b[31m") == "\\x1b[31m"
    assert escape(b"a\\b") == "a\\\\b"
    assert escape(b"\xff") == "\\xff"
    assert escape("x\u202ey") == "x\\u202ey"
    assert escape(b"ok\nFAKE\r") == "ok\\nFAKE\\r"
    assert escape("[/bold]") == "[/bold]"  # markup is the renderer's job: shown as text


def test_backslash_and_invalid_byte_stay_distinguishable() -> None:
    assert escape(b"\\xff") != escape(b"\xff")


@settings(max_examples=2000)
@given(st.binary(max_size=256))
def test_any_bytes_escape_to_inert_text(data: bytes) -> None:
    assert_inert(escape(data))


@settings(max_examples=1000)
@given(st.text(max_size=200))
def test_any_text_escapes_to_inert_text(text: str) -> None:
    assert_inert(escape(text))


@settings(max_examples=2000)
@given(st.binary(max_size=512))
def test_json_payload_gives_back_the_exact_bytes(data: bytes) -> None:
    fields = payload_fields(data)
    line = json.dumps(fields, ensure_ascii=True)
    assert line.isascii()
    assert payload_bytes(json.loads(line)) == data
    assert fields["text"] == decode(data)
    assert ("data_b64" in fields) == (data.decode("utf-8", "replace").encode() != data)


def test_every_format_character_is_escaped() -> None:
    """Every Cf character this Python knows (and the whole tag block) is
    written as an escape, never passed raw to a terminal (issue 14 item 23)."""
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(cf) > 150
    tags = [chr(c) for c in range(0xE0000, 0xE0080)]
    for ch in [*cf, *tags, "\u2028", "\u2029"]:
        shown = escape(ch)
        assert shown.startswith("\\") and ch not in shown, hex(ord(ch))
        assert shown.isascii()


def test_format_character_escapes() -> None:
    assert escape("pay\u00adpal") == "pay\\xadpal"
    assert escape("a\U000e0041b") == "a\\U000e0041b"
    assert escape("\u2063") == "\\u2063"
    # characters that are visible stay as they are
    assert escape("é ü ✓ 中文 👍") == "é ü ✓ 中文 👍"

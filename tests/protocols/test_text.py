"""The one escaping function and the JSON payload fields."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from netkit.protocols.text import decode, escape, payload_bytes, payload_fields
from tests.hostile import CORPUS, raw_controls
from tests.profiles import examples


def assert_inert(text: str) -> None:
    bad = raw_controls(text, allow="")
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


@settings(max_examples=examples(2000))
@given(st.binary(max_size=256))
def test_any_bytes_escape_to_inert_text(data: bytes) -> None:
    assert_inert(escape(data))


@settings(max_examples=examples(1000))
@given(st.text(max_size=200))
def test_any_text_escapes_to_inert_text(text: str) -> None:
    assert_inert(escape(text))


@settings(max_examples=examples(2000))
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

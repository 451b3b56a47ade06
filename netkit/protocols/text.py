"""Untrusted text: the one escaping function every renderer uses.

Bytes that came from the network (or from a name lookup) may hold terminal
escape sequences (CSI, OSC 8 hyperlinks, OSC 52 clipboard writes), C1
controls, bidi overrides, NUL and CR that would forge a second log line, or
invalid UTF-8.  :func:`escape` turns any of that into visible, inert ASCII
escapes so that one payload is always shown as one line and nothing is
interpreted by the terminal.  Rich markup is not this module's concern:
renderers never parse markup in untrusted text (they build ``Text`` objects).
"""

from __future__ import annotations

import re
from typing import Any

# Characters that are never shown raw:
#  - C0 controls, DEL, C1 controls (category Cc)
#  - every format character (category Cf in Unicode 14, plus U+13439-1343F
#    from Unicode 15): the soft hyphen,
#    bidi embeddings, overrides, isolates and marks, zero-width characters,
#    the BOM, invisible operators, Arabic and Syriac marks, interlinear
#    annotations, Egyptian and shorthand format controls, tag characters
#    (the whole block U+E0000-E007F), which hide or reorder text
#  - line and paragraph separators (a terminal or log viewer may break lines)
# tests/test_text.py checks this list against unicodedata.
_UNSAFE = (
    "\x00-\x1f\x7f-\x9f\xad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f"
    # lone surrogates: bytes that were not valid UTF-8 (surrogateescape)
    "\ud800-\udfff"
)
_UNSAFE_RE = re.compile(f"[{_UNSAFE}\\\\]")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _one(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def decode(data: bytes) -> str:
    """Decode UTF-8, writing each invalid byte as ``\\xNN`` (never fails)."""
    return data.decode("utf-8", "backslashreplace")


def decode_exact(data: bytes) -> str:
    """Decode UTF-8 keeping each invalid byte as a lone surrogate (surrogateescape):
    the bytes come back with ``.encode("utf-8", "surrogateescape")``, and
    :func:`escape` shows such a byte as ``\\xNN``, once."""
    return data.decode("utf-8", "surrogateescape")


def json_safe(value: Any) -> Any:
    """*value* (str, or dicts and lists of them) with each undecodable byte kept by
    surrogateescape written ``\\xNN``, the way :func:`decode` writes it: JSON
    holds no lone surrogates (the exact bytes travel as ``data_b64``)."""
    if isinstance(value, str):
        if _SURROGATE_RE.search(value) is None:
            return value
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def escape(value: str | bytes) -> str:
    """Return *value* as one line of inert, printable text.

    Bytes are decoded as UTF-8 with invalid bytes written ``\\xNN``.  A
    backslash is doubled, so an escape in the output always stands for a
    byte or character of the input and never for literal text.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    return _UNSAFE_RE.sub(_one, value)


def truncate(text: str, limit: int) -> str:
    """Shorten already-escaped *text* to about *limit* characters for display."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def payload_fields(data: bytes) -> dict[str, str]:
    """JSON fields for a payload: ``text``, plus ``data_b64`` when not UTF-8.

    ``text`` is the UTF-8 decoding (invalid bytes written ``\\xNN``);
    ``data_b64`` carries the exact bytes whenever ``text`` alone cannot.
    """
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        import base64

        return {
            "text": decode(data),
            "data_b64": base64.b64encode(data).decode("ascii"),
        }


def payload_bytes(fields: dict[str, object]) -> bytes:
    """Inverse of :func:`payload_fields`: the exact bytes a JSON object carries."""
    b64 = fields.get("data_b64")
    if isinstance(b64, str):
        import base64

        return base64.b64decode(b64)
    text = fields.get("text")
    if not isinstance(text, str):
        raise ValueError("payload has neither text nor data_b64")
    return text.encode("utf-8")

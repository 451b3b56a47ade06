"""Output for a terminal or pipe whose encoding has no Unicode.

``PYTHONIOENCODING=ascii``, ``LANG=C`` on an old system: both human back
ends (rich's and :mod:`netkit.render.lite`) write through
:class:`Transliterating` then, loaded only for such a stream.
"""

from __future__ import annotations

import codecs
import io
from typing import TextIO

# what the renderers draw, for a terminal or pipe whose encoding has no
# Unicode (PYTHONIOENCODING=ascii, LANG=C on an old system)
_ASCII_GLYPHS = str.maketrans(
    {
        "✓": "ok",
        "✗": "no",
        "─": "-",
        "━": "=",
        "│": "|",
        "→": "->",
        "…": "...",
        "·": ".",
        "▶": ">",
        "◀": "<",
        "\u00a0": " ",
    }
)


def _u_escape(exc: UnicodeError) -> tuple[str, int]:
    # \uNNNN, never \xNN: netkit writes \xNN only for bytes that are not UTF-8
    assert isinstance(exc, UnicodeEncodeError)
    chars = exc.object[exc.start : exc.end]
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in chars
    ), exc.end


codecs.register_error("netkit-uescape", _u_escape)


class Transliterating(io.TextIOBase):
    """A text stream in an encoding without Unicode: the renderers' glyphs in
    ASCII, anything else it cannot encode written as ``\\uNNNN`` (the way
    netkit escapes text anyway), never a UnicodeEncodeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only here: the stream's
        return self._stream.encoding

    def write(self, text: str) -> int:
        encoding = self._stream.encoding
        safe = text.translate(_ASCII_GLYPHS).encode(encoding, "netkit-uescape")
        self._stream.write(safe.decode(encoding))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

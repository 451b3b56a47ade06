"""Line framing with a length cap: a small sans-IO state machine.

:class:`LineFramer` is fed whatever ``recv()`` returned, in any split, and
hands back complete lines (LF or CRLF kept, so a reply can keep the same
ending).  It never buffers more than ``max_line`` + 2 bytes: a line longer
than the cap sets :attr:`LineFramer.too_long` and everything after it is
dropped (the caller sends an error and closes).  Stdlib ``readline()``
without a size grows without limit; this does not.
"""

from __future__ import annotations

DEFAULT_MAX_LINE = 65_536

LF = b"\n"


def content(line: bytes) -> bytes:
    """A line without its ending (``\\n`` or ``\\r\\n``)."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def is_end(line: bytes) -> bool:
    """An empty line (``\\n`` or ``\\r\\n``) ends an upper-server session."""
    return line == b"\n" or line == b"\r\n"


def upper(line: bytes) -> bytes:
    """The upper-server reply: ASCII letters upper-cased, bytes-wise; the ending kept."""
    return line.upper()


class LineFramer:
    """Split a byte stream into lines of at most *max_line* bytes (ending excluded)."""

    __slots__ = ("_buf", "max_line", "too_long")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._buf = b""
        self.too_long = False

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held in the buffer."""
        return len(self._buf)

    def flush(self) -> bytes:
        """At EOF: the incomplete last line (no ending), and forget it."""
        rest, self._buf = self._buf, b""
        return rest

    def _over(self, partial: bytes) -> bool:
        # a partial line may still end in "\r" that belongs to a CRLF ending
        n = len(partial)
        limit = self.max_line + 1 if partial.endswith(b"\r") else self.max_line
        return n > limit

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete lines they finish, endings kept.

        After a too-long line, returns the lines before it and sets
        :attr:`too_long`; later calls return nothing.
        """
        if self.too_long:
            return []
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if LF not in data:
            if self._over(data):
                self.too_long = True
            else:
                self._buf = data
            return []
        parts = data.split(LF)
        rest = parts.pop()
        limit = self.max_line
        lines: list[bytes] = []
        for part in parts:
            n = len(part) - 1 if part.endswith(b"\r") else len(part)
            if n > limit:
                self.too_long = True
                return lines
            lines.append(part + LF)
        if rest:
            if self._over(rest):
                self.too_long = True
            else:
                self._buf = rest
        return lines


def split_lines(data: bytes, max_line: int) -> tuple[list[bytes], bool]:
    """Reference framing of a whole stream at once: (complete lines, too_long)."""
    lines: list[bytes] = []
    start = 0
    while True:
        end = data.find(LF, start)
        if end < 0:
            tail = data[start:]
            over = len(tail) > (max_line + 1 if tail.endswith(b"\r") else max_line)
            return lines, over
        line = data[start : end + 1]
        if len(content(line)) > max_line:
            return lines, True
        lines.append(line)
        start = end + 1

"""The one hex view of payloads (``--hex``, like ``ncat -x`` / ``socat -x``).

Each payload becomes rows of 16 bytes: a direction mark (``>`` sent, ``<``
received, from the point of view of the command that prints it), the offset
in hex, the bytes in hex (a gap after the eighth) and the printable ASCII
column (anything else a ``.``), so control bytes and escape sequences from
the network are never written raw::

    < 0000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0d 0a        |Hello, world..|
"""

from __future__ import annotations

from rich.text import Text

from netkit.render.human import RECEIVED, SENT

__all__ = ["RECEIVED", "SENT", "hexdump", "hexdump_lines"]

ROW = 16


def _printable(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."


def hexdump_lines(data: bytes, mark: str) -> list[str]:
    """The rows of the hex view of *data* (``MARK (empty)`` for no bytes)."""
    if not data:
        return [f"{mark} (empty)"]
    width = max(4, len(f"{len(data) - 1:x}"))
    lines = []
    for at in range(0, len(data), ROW):
        row = data[at : at + ROW]
        left = " ".join(f"{b:02x}" for b in row[:8])
        right = " ".join(f"{b:02x}" for b in row[8:])
        hexes = f"{left:<23}  {right:<23}"
        text = "".join(_printable(b) for b in row)
        lines.append(f"{mark} {at:0{width}x}  {hexes}  |{text}|")
    return lines


def hexdump(data: bytes, mark: str) -> Text:
    """:func:`hexdump_lines` as one rich ``Text`` (no markup is parsed)."""
    style = "cyan" if mark == RECEIVED else "magenta"
    out = Text()
    for n, line in enumerate(hexdump_lines(data, mark)):
        if n:
            out.append("\n")
        out.append(line[:1], style=style)
        out.append(line[1:])
    return out

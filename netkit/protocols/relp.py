"""RELP, the Reliable Event Logging Protocol (rsyslog's ``imrelp``): the client side, sans-IO.

Every RELP frame is ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``: a
transaction number (1 to 999,999,999, then 1 again; 0 is for hints), a
command of 1-32 letters, the number of octets of DATA (up to 9 digits), the
data when there is any, and a newline that catches framing errors.  The
client opens a session with ``open`` and its offers
(``relp_version=0``, ``relp_software=netkit``, ``commands=syslog``), sends
each record as a ``syslog`` command, and ends with ``close``.  The server
answers every command with an ``rsp`` frame carrying the same transaction
number, in the order the commands came: ``200 OK`` (for ``open`` followed
by the offers it accepted) or an error code (``500 ...``).  Before it closes
a session itself it may send the hint ``0 serverclose 0``.

A record counts as delivered when its ``200`` arrives.  That makes loss
visible, not duplication impossible: a record the server took but whose
response was lost with the connection is sent again on the next one
(at-least-once delivery).

This module does no I/O and reads no clock: :class:`FrameParser` turns bytes
(any chunking) into :class:`Frame` objects with bounds on every field and on
DATALEN, :func:`encode_frame` does the reverse, and :class:`RelpSession`
tracks one connection's transactions (what is outstanding, in which order
responses must come, the window).  Anything malformed raises
:class:`RelpError` with a one-line reason: the connection is then of no
further use (the spec says to close it).

Source: the RELP specification in librelp (``doc/relp.md``).  librelp
itself moves from 999,999,999 to 1,000,000,000 (which its own parser then
refuses); this module follows the specification and wraps to 1.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

MAX_TXNR = 999_999_999
MAX_DATALEN = 128 * 1024  # librelp's default maximum DATALEN (the spec's "128K")
WINDOW = 128  # transactions outstanding at most (librelp's default window)
MAX_COMMAND = 32
OFFERS = b"relp_version=0\nrelp_software=netkit\ncommands=syslog"

# a whole header: TXNR SP COMMAND SP DATALEN, then SP (data follows) or LF (no data)
_HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")
# what may begin a header that has not fully arrived yet
_PREFIX = re.compile(rb"(?:\d{1,9}(?: (?:[A-Za-z]{1,32}(?: \d{0,9})?)?)?)?")
_HEADER_MAX = 9 + 1 + MAX_COMMAND + 1 + 9 + 1


class RelpError(ValueError):
    """A malformed frame or a broken protocol rule; the connection cannot go on."""


def next_txnr(txnr: int) -> int:
    """The transaction number after *txnr*: 1 .. 999,999,999, then 1 again."""
    return 1 if txnr >= MAX_TXNR else txnr + 1


def encode_frame(txnr: int, command: str, data: bytes = b"") -> bytes:
    """One RELP frame: ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``."""
    if not 0 <= txnr <= MAX_TXNR:
        raise ValueError(f"transaction number {txnr} is not 0 to {MAX_TXNR}")
    if not (command.isascii() and command.isalpha() and len(command) <= MAX_COMMAND):
        raise ValueError(f"command {command!r} is not 1 to {MAX_COMMAND} ASCII letters")
    if len(data) > MAX_TXNR:
        raise ValueError(f"{len(data)} bytes do not fit a RELP frame")
    head = b"%d %s %d" % (txnr, command.encode("ascii"), len(data))
    return head + b" " + data + b"\n" if data else head + b"\n"


@dataclass(frozen=True)
class Frame:
    txnr: int
    command: str
    data: bytes = b""


class FrameParser:
    """Frames out of a byte stream fed in chunks of any size.

    A frame whose DATALEN is over *max_data* is refused as soon as its header
    has arrived, and a header that cannot become valid is refused as soon as
    the offending byte arrives, so at most one frame's worth is buffered.
    After an error the parser refuses everything (the stream has lost its
    framing).
    """

    def __init__(self, max_data: int = MAX_DATALEN) -> None:
        self.max_data = max_data
        self._buf = bytearray()
        self._error: RelpError | None = None

    @property
    def pending(self) -> int:
        """Bytes buffered that do not make a whole frame yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Frame]:
        if self._error is not None:
            raise self._error
        self._buf += chunk
        buf = self._buf
        frames: list[Frame] = []
        pos = 0
        try:
            while pos < len(buf):
                m = _HEADER.match(buf, pos)
                if m is None:
                    rest = bytes(buf[pos : pos + _HEADER_MAX])
                    if len(rest) < _HEADER_MAX and _PREFIX.fullmatch(rest):
                        break  # a header still arriving
                    raise RelpError(f"malformed RELP frame header {_show(rest)}")
                txnr, command, datalen = int(m[1]), m[2].decode("ascii"), int(m[3])
                if datalen > self.max_data:
                    raise RelpError(
                        f"RELP frame of {datalen} bytes (txnr {txnr} {command}) is over "
                        f"the limit of {self.max_data}"
                    )
                if m[4] == b"\n":
                    if datalen:
                        raise RelpError(
                            f"RELP frame txnr {txnr} {command}: DATALEN {datalen} but no data"
                        )
                    frames.append(Frame(txnr, command))
                    pos = m.end()
                    continue
                if datalen == 0:
                    raise RelpError(f"RELP frame txnr {txnr} {command}: DATALEN 0 then data")
                start = m.end()
                end = start + datalen
                if len(buf) <= end:
                    break  # data (or its trailer) still arriving
                if buf[end] != 0x0A:
                    raise RelpError(
                        f"RELP frame txnr {txnr} {command}: no LF after {datalen} bytes of "
                        f"data (found {_show(bytes(buf[end : end + 1]))})"
                    )
                frames.append(Frame(txnr, command, bytes(buf[start:end])))
                pos = end + 1
        except RelpError as exc:
            self._error = exc
            self._buf = bytearray()
            raise
        del buf[:pos]
        return frames


def _show(data: bytes) -> str:
    text = data[:40].decode("ascii", "backslashreplace")
    return repr(text) + ("..." if len(data) > 40 else "")


@dataclass(frozen=True)
class Response:
    """An ``rsp``: the status of the command with the same transaction number."""

    txnr: int
    code: int
    text: str  # the human-readable rest of the status line
    data: bytes = b""  # after the status line (the offers, for ``open``)

    @property
    def ok(self) -> bool:
        return self.code == 200


_STATUS = re.compile(rb"(\d{3})(?: ([^\n]*))?(?:\n(.*))?", re.DOTALL)


def parse_response(frame: Frame) -> Response:
    """The status of an ``rsp`` frame: ``CODE [SP TEXT] [LF DATA]``."""
    m = _STATUS.fullmatch(frame.data)
    if m is None:
        raise RelpError(f"RELP rsp txnr {frame.txnr} has no status code: {_show(frame.data)}")
    text = (m[2] or b"").decode("utf-8", "backslashreplace")
    return Response(frame.txnr, int(m[1]), text, m[3] or b"")


MAX_OFFERS = 64


def parse_offers(data: bytes) -> dict[str, list[str]]:
    """Offers (``NAME[=VALUE[,VALUE...]]`` one a line) as a dict of value lists."""
    offers: dict[str, list[str]] = {}
    for line in data.split(b"\n"):
        if not line:
            continue
        if len(offers) >= MAX_OFFERS:
            raise RelpError(f"more than {MAX_OFFERS} RELP offers")
        name, _, values = line.partition(b"=")
        key = name.decode("utf-8", "backslashreplace")
        offers[key] = [v.decode("utf-8", "backslashreplace") for v in values.split(b",") if v]
    return offers


# -- what a session reports --------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The server accepted ``open``: syslog commands may be sent."""

    offers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Acked:
    """``200`` for the ``syslog`` command *txnr*: the record is delivered."""

    txnr: int


@dataclass(frozen=True)
class Refused:
    """An error status for the ``syslog`` command *txnr*: the server will not take it."""

    txnr: int
    code: int
    text: str


@dataclass(frozen=True)
class ServerClosed:
    """The ``serverclose`` hint: the server is closing the session."""


@dataclass(frozen=True)
class Closed:
    """The response to ``close``: the session is over."""


SessionEvent = Opened | Acked | Refused | ServerClosed | Closed


class RelpSession:
    """One RELP connection, client side: transactions, their order, the window.

    ``open()`` first; once :class:`Opened` has come out of ``receive()``,
    ``syslog()`` while ``can_send``; ``close()`` at the end.  ``receive()``
    takes the server's bytes in any chunking and checks that every response
    answers the oldest outstanding command (the spec's order rule).
    """

    def __init__(self, window: int = WINDOW, max_data: int = MAX_DATALEN) -> None:
        if window < 1:
            raise ValueError("the window holds at least one transaction")
        self.window = window
        self.state = "new"  # new, opening, open, closing, closed
        self._parser = FrameParser(max_data)
        self._txnr = 0  # the last transaction number used
        self._outstanding: collections.deque[tuple[int, str]] = collections.deque()

    @property
    def outstanding(self) -> int:
        """Commands sent and not answered yet."""
        return len(self._outstanding)

    @property
    def can_send(self) -> bool:
        return self.state == "open" and len(self._outstanding) < self.window

    def _command(self, command: str, data: bytes) -> tuple[int, bytes]:
        self._txnr = next_txnr(self._txnr)
        self._outstanding.append((self._txnr, command))
        return self._txnr, encode_frame(self._txnr, command, data)

    def open(self, offers: bytes = OFFERS) -> bytes:
        if self.state != "new":
            raise RuntimeError(f"open in state {self.state}")
        self.state = "opening"
        return self._command("open", offers)[1]

    def syslog(self, message: bytes) -> tuple[int, bytes]:
        """A ``syslog`` command for *message*: its transaction number and its frame."""
        if not self.can_send:
            raise RuntimeError(
                f"syslog in state {self.state} with {len(self._outstanding)} of "
                f"{self.window} outstanding"
            )
        return self._command("syslog", message)

    def close(self) -> bytes:
        if self.state not in ("open", "opening"):
            raise RuntimeError(f"close in state {self.state}")
        self.state = "closing"
        return self._command("close", b"")[1]

    def receive(self, data: bytes) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        for frame in self._parser.feed(data):
            event = self._frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _frame(self, frame: Frame) -> SessionEvent | None:
        if frame.txnr == 0:
            if frame.command == "serverclose":
                return ServerClosed()
            return None  # another hint: hints may be ignored
        if frame.command != "rsp":
            raise RelpError(f"RELP server sent command {frame.command!r} (txnr {frame.txnr})")
        if not self._outstanding:
            raise RelpError(f"RELP rsp for txnr {frame.txnr}, but no command is outstanding")
        txnr, command = self._outstanding[0]
        if frame.txnr != txnr:
            raise RelpError(
                f"RELP rsp for txnr {frame.txnr} while {txnr} ({command}) is the oldest outstanding"
            )
        self._outstanding.popleft()
        if command == "close":  # librelp answers it with an empty rsp (no status)
            self.state = "closed"
            return Closed()
        rsp = parse_response(frame)
        if command == "open":
            if not rsp.ok:
                raise RelpError(f"RELP server refused the session: {rsp.code} {rsp.text}".rstrip())
            offers = parse_offers(rsp.data)
            if "relp_version" not in offers:
                raise RelpError("RELP server's open response has no relp_version offer")
            if "syslog" not in offers.get("commands", []):
                raise RelpError("RELP server does not offer the syslog command")
            if self.state == "opening":
                self.state = "open"
            return Opened(offers)
        if rsp.ok:
            return Acked(txnr)
        return Refused(txnr, rsp.code, rsp.text)

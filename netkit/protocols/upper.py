"""The upper-case line protocol as one sans-IO session: bytes in, bytes out.

The lecture's server, as a state machine free of I/O (the way h11 keeps
HTTP): feed :meth:`UpperSession.receive` whatever ``recv()`` returned, in
any split, and send back what it returns.  Each line comes back
upper-cased with its ending; an empty line ends the session, so does a line
longer than the cap (after an error reply), so does EOF (``b""``).  An
unterminated last line (``printf abc | ncat HOST 2345``) is answered at
EOF, without an ending, the way the lecture's server answers it.  Why it
ended is :attr:`UpperSession.end`.  No clock, no socket: every
concurrency mode of upper-server only moves bytes to and from it.
"""

from __future__ import annotations

from netkit.protocols import lines as framing

END_EMPTY = "empty line"
END_TOO_LONG = "line too long"
END_EOF = "eof"

BUSY_REPLY = b"ERROR server busy (max clients reached); try again later\r\n"


def too_long_reply(max_line: int) -> bytes:
    return f"ERROR line longer than {max_line} bytes; closing\r\n".encode("ascii")


class UpperSession:
    """One connection's protocol state: lines in, upper-cased replies out.

    With *log_lines*, the content of each line answered (ending removed) is
    collected in :attr:`heard` for the caller to log, and taken with
    :meth:`take_heard`.  :attr:`lines` counts the lines answered.
    :attr:`steady` after a :meth:`receive` means the reply is all there is
    to act on: idle, not ended, nothing to log.
    """

    __slots__ = (
        "_cap",
        "end",
        "framer",
        "heard",
        "idle",
        "lines",
        "log_lines",
        "steady",
    )

    def __init__(self, max_line: int = framing.DEFAULT_MAX_LINE, *, log_lines: bool = False):
        self.framer = framing.LineFramer(max_line)
        self.lines = 0
        self.log_lines = log_lines
        self.heard: list[bytes] = []
        self.end: str | None = None
        #: no partial line pending: closing now loses nothing the client sent
        #: (kept up to date by :meth:`receive`; a plain attribute, read per line)
        self.idle = True
        self._settle()

    def _settle(self) -> None:
        """Derive :attr:`steady` and the fast path's cap after the state changed."""
        #: idle, not ended and no lines collected for the log: after a
        #: :meth:`receive`, the reply is all the caller has to act on (one
        #: attribute for a mode to test per chunk instead of three)
        self.steady = steady = self.idle and self.end is None and not self.log_lines
        # the longest chunk the fast path takes (a line within the cap, its
        # ending included); 0 unless steady, so that the one length test
        # also tells whether the fast path may run at all
        self._cap = self.framer.max_line + 1 if steady else 0

    def receive(self, data: bytes) -> bytes:
        """Bytes received -> the reply to send (maybe empty); :attr:`end` says if it ended.

        ``b""`` is EOF.  After the end, what comes is ignored.
        """
        # fast path, the common case: steady, and exactly one whole, non-empty
        # line (the last byte a newline and no other: ``in`` with an int is a
        # memchr, without the argument parsing of ``find``).  Each bytecode
        # counts here: this runs once per request in every mode.
        if 2 < len(data) <= self._cap and data[-1] == 10 and 10 not in data[:-1]:
            self.lines += 1
            return data.upper()
        if self.end is not None:
            return b""
        framer = self.framer
        if not data:
            self.end = END_EOF
            reply = self._last_line(framer.flush())
            self.idle = framer.pending == 0
            self._settle()
            return reply
        out: list[bytes] = []
        for line in framer.feed(data):
            if framing.is_end(line):
                self.end = END_EMPTY
                break
            self.lines += 1
            if self.log_lines:
                self.heard.append(framing.content(line))
            out.append(line.upper())
        if self.end is None and framer.too_long:
            out.append(too_long_reply(framer.max_line))
            self.end = END_TOO_LONG
        self.idle = framer.pending == 0
        self._settle()
        return b"".join(out)

    def _last_line(self, rest: bytes) -> bytes:
        # the framer holds at most max_line bytes (+ a "\r" that may start a
        # CRLF): a line the cap allows, answered and logged like any other
        if not rest:
            return b""
        self.lines += 1
        if self.log_lines:
            self.heard.append(rest.removesuffix(b"\r"))
        return rest.upper()

    def take_heard(self) -> list[bytes]:
        heard, self.heard = self.heard, []
        return heard


class EchoSession(UpperSession):
    """RFC 862 echo over TCP (``upper-server serve --plain``, inetd's internal echo).

    Every byte comes back unchanged as soon as it arrives, empty lines and
    bytes past ``max_line`` included; only EOF ends the session.  Lines are
    counted, and collected for the log with *log_lines* (the first
    ``max_line`` bytes of each: what is held stays bounded).  :attr:`idle`
    is false while a line is incomplete, so ``--line-timeout`` and a stop
    treat it as the upper-case session does.
    """

    __slots__ = ("_partial",)

    def __init__(self, max_line: int = framing.DEFAULT_MAX_LINE, *, log_lines: bool = False):
        super().__init__(max_line, log_lines=log_lines)
        self._partial = b""  # the start of the incomplete line, for the log

    def receive(self, data: bytes) -> bytes:
        if self.end is not None:
            return b""
        cap = self.framer.max_line
        if not data:
            self.end = END_EOF
            if not self.idle:
                self._line(self._partial)
            self._settle()
            return b""
        *whole, rest = data.split(b"\n")
        for part in whole:
            self._line(self._partial + part)
            self._partial = b""
        if rest:
            if len(self._partial) < cap:
                self._partial = (self._partial + rest)[:cap]
            self.idle = False
        else:
            self.idle = True
        self._settle()
        return data

    def _line(self, line: bytes) -> None:
        self.lines += 1
        if self.log_lines:
            self.heard.append(line.removesuffix(b"\r")[: self.framer.max_line])
        self.idle = True

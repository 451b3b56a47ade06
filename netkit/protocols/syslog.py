"""Syslog over UDP as ``logger -n`` sends it: RFC 5424 and the BSD format of RFC 3164.

:func:`parse` returns the facility, severity, host, app name and the rest,
or ``None`` when a datagram is not syslog (then it is a plain message).
Parsing is lenient the way syslog daemons are: an RFC 3164 datagram without
a timestamp or a host still yields its priority and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netkit.protocols.text import decode_exact as decode

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_PRI_RE = re.compile(rb"<([0-9]{1,3})>")
_MONTHS = b"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_BSD_TIME_RE = re.compile(rb"(?:" + _MONTHS + rb") [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}")
_TAG_RE = re.compile(rb"([!-9;-Z\\^-~\x80-\xff]{1,48}?)(?:\[([0-9A-Za-z._-]{1,32})\])?: ?")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SyslogMessage:
    format: str  # "rfc5424" or "rfc3164"
    facility: int
    severity: int
    timestamp: str | None
    host: str | None
    app: str | None
    procid: str | None
    msgid: str | None
    structured_data: str | None
    message: bytes

    @property
    def facility_name(self) -> str:
        return FACILITIES[self.facility] if self.facility < len(FACILITIES) else str(self.facility)

    @property
    def severity_name(self) -> str:
        return SEVERITIES[self.severity]

    def as_dict(self) -> dict[str, Any]:
        """Names for facility and severity; text fields decoded, each invalid byte
        kept as a lone surrogate (the JSON renderer writes it ``\\xNN``, a
        terminal renderer escapes it once)."""
        return {
            "format": self.format,
            "facility": self.facility_name,
            "severity": self.severity_name,
            "timestamp": self.timestamp,
            "host": self.host,
            "app": self.app,
            "procid": self.procid,
            "msgid": self.msgid,
            "structured_data": self.structured_data,
            "message": decode(self.message),
        }


def _nil(field: bytes) -> str | None:
    return None if field == b"-" else decode(field)


def _split_sd(rest: bytes) -> tuple[bytes, bytes] | None:
    """Split RFC 5424 STRUCTURED-DATA off the front of *rest*: (sd, remainder)."""
    if rest.startswith(b"-"):
        return b"-", rest[1:]
    i = 0
    n = len(rest)
    while i < n and rest[i : i + 1] == b"[":
        i += 1
        in_quotes = False
        while i < n:
            c = rest[i : i + 1]
            if in_quotes and c == b"\\":
                i += 2
                continue
            if c == b'"':
                in_quotes = not in_quotes
            elif c == b"]" and not in_quotes:
                break
            i += 1
        if i >= n:
            return None  # unterminated element
        i += 1
    if i == 0:
        return None
    return rest[:i], rest[i:]


def _parse_5424(facility: int, severity: int, body: bytes) -> SyslogMessage | None:
    # body: after "<PRI>1 "
    parts = body.split(b" ", 5)
    if len(parts) < 6:
        return None
    timestamp, host, app, procid, msgid, rest = parts
    split = _split_sd(rest)
    if split is None:
        return None
    sd, msg = split
    if msg and not msg.startswith(b" "):
        return None
    msg = msg[1:]
    if msg.startswith(_BOM):
        msg = msg[len(_BOM) :]
    return SyslogMessage(
        format="rfc5424",
        facility=facility,
        severity=severity,
        timestamp=_nil(timestamp),
        host=_nil(host),
        app=_nil(app),
        procid=_nil(procid),
        msgid=_nil(msgid),
        structured_data=_nil(sd),
        message=msg,
    )


def _parse_3164(facility: int, severity: int, body: bytes) -> SyslogMessage:
    timestamp = host = app = procid = None
    m = _BSD_TIME_RE.match(body)
    if m is not None:
        timestamp = decode(m.group())
        body = body[m.end() :]
        if body.startswith(b" "):
            body = body[1:]
            # HOSTNAME, then the TAG; a lone word before ':' is a tag without a host
            word, sep, after = body.partition(b" ")
            if sep and not word.endswith(b":") and b"[" not in word and word:
                host = decode(word)
                body = after
    t = _TAG_RE.match(body)
    if t is not None and body[t.end() - 1 : t.end()] in (b":", b" "):
        app = decode(t.group(1))
        procid = decode(t.group(2)) if t.group(2) else None
        body = body[t.end() :]
    return SyslogMessage(
        format="rfc3164",
        facility=facility,
        severity=severity,
        timestamp=timestamp,
        host=host,
        app=app,
        procid=procid,
        msgid=None,
        structured_data=None,
        message=body,
    )


def parse(datagram: bytes) -> SyslogMessage | None:
    """Parse a syslog datagram; ``None`` if it does not start with a valid ``<PRI>``."""
    m = _PRI_RE.match(datagram)
    if m is None:
        return None
    text = m.group(1)
    if len(text) > 1 and text.startswith(b"0"):
        return None  # RFC 5424: no leading zeros
    pri = int(text)
    if pri > 191:
        return None
    facility, severity = divmod(pri, 8)
    body = datagram[m.end() :]
    if body.startswith(b"1 "):
        parsed = _parse_5424(facility, severity, body[2:])
        if parsed is not None:
            return parsed
    return _parse_3164(facility, severity, body)

"""Log records from any dialect on one scale: levels, filters, RFC 5424 for forwarding.

Every dialect the creosote listener understands (netkit's own chunks, JSON
lines, raw ``spew()`` datagrams, syslog, the stdlib logging pickles, GELF)
is turned into a :class:`Record`.  Levels live on Python's scale (DEBUG 10,
INFO 20, WARNING 30, ERROR 40, CRITICAL 50) extended by syslog's extra
severities (NOTICE 25, ALERT 60, EMERGENCY 70), so ``--level warning``
means the same for a syslog ``warning`` and a Python ``logging.WARNING``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY = 10, 20, 25, 30, 40, 50, 60, 70

# syslog severity (0 emerg .. 7 debug) -> level
SEVERITY_LEVELS = (EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG)

_NAMES = {
    "trace": 5,
    "debug": DEBUG,
    "info": INFO,
    "informational": INFO,
    "notice": NOTICE,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "err": ERROR,
    "critical": CRITICAL,
    "crit": CRITICAL,
    "fatal": CRITICAL,
    "alert": ALERT,
    "emergency": EMERGENCY,
    "emerg": EMERGENCY,
    "panic": EMERGENCY,
}
_CANONICAL = {
    DEBUG: "debug",
    INFO: "info",
    NOTICE: "notice",
    WARNING: "warning",
    ERROR: "error",
    CRITICAL: "critical",
    ALERT: "alert",
    EMERGENCY: "emergency",
}
LEVEL_CHOICES = tuple(_CANONICAL.values())


def parse_level(text: str) -> int:
    """A level from a name (Python's or syslog's, any case) or a number 0-100."""
    value = text.strip().lower()
    if value in _NAMES:
        return _NAMES[value]
    if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) <= 100:
        return int(value)
    raise ValueError(
        f"unknown level {text!r}: use one of {', '.join(LEVEL_CHOICES)} (or warn, err, crit, "
        "emerg) or a number 0-100"
    )


def level_name(level: int) -> str:
    """The name of *level*: the canonical one, or ``level N`` between names."""
    return _CANONICAL.get(level, f"level {level}")


def level_from_severity(severity: int) -> int:
    return SEVERITY_LEVELS[severity] if 0 <= severity < 8 else INFO


def severity_from_level(level: int) -> int:
    """The syslog severity for *level* (the highest severity at or below it)."""
    for severity, bound in enumerate(SEVERITY_LEVELS):
        if level >= bound:
            return severity
    return 7


@dataclass(frozen=True)
class Record:
    """One message from any dialect.

    *message* is the text shown (with its newlines; a traceback included);
    *level* is on the scale above, ``None`` when the dialect has none.
    *fields* holds the dialect's extra plain values (exception text, extra
    dicts, GELF additional fields, syslog facility ...).
    """

    dialect: str
    message: bytes
    level: int | None = None
    logger: str | None = None
    host: str | None = None
    app: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decoded_record(
    dialect: str,
    text: str,
    *,
    level: int | None,
    logger: Any = None,
    host: Any = None,
    app: Any = None,
    fields: dict[str, Any],
) -> Record:
    """A Record from decoded (JSON, pickle) values: names that are not strings are dropped."""
    return Record(
        dialect=dialect,
        message=text.encode("utf-8", "surrogateescape"),
        level=level,
        logger=_str_or_none(logger),
        host=_str_or_none(host),
        app=_str_or_none(app),
        fields=fields,
    )


@dataclass(frozen=True)
class Refused:
    """A datagram or frame that looked like a dialect but was not accepted."""

    dialect: str
    reason: str


# --------------------------------------------------------------------------
# filters


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class RecordFilter:
    """``--level``, ``--grep``, ``--logger`` and ``--source``; all must match.

    A record without a level counts as INFO; ``--logger`` is a prefix
    match on dotted names (``app`` matches ``app`` and ``app.db``, not
    ``apple``); ``--source`` compares the sender's host exactly.
    """

    level: int | None = None
    grep: re.Pattern[str] | None = None
    logger: str | None = None
    source: str | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.level, self.grep, self.logger, self.source))

    def rejects(self, record: Record, source_host: str) -> str | None:
        """Why *record* is filtered out (``"level"``, ``"grep"``, ...) or ``None``."""
        if self.level is not None and (record.level if record.level is not None else INFO) < (
            self.level
        ):
            return "level"
        if self.logger is not None:
            name = record.logger or ""
            prefix = self.logger.rstrip(".")  # "app." means "app" and what is under it
            if not (name == prefix or name.startswith(prefix + ".")):
                return "logger"
        if self.source is not None and source_host != self.source:
            return "source"
        if self.grep is not None and self.grep.search(_text(record.message)) is None:
            return "grep"
        return None


# --------------------------------------------------------------------------
# RFC 5424 for forwarding

PEN = 32473  # RFC 5612's example enterprise number: SD-ID netkit@32473
_SD_NAME_BAD = re.compile(r'[^!-~]|[= \]"]')
_PRINTUSASCII_BAD = re.compile(r"[^!-~]")


def _header_field(value: str | None, limit: int) -> str:
    if not value:
        return "-"
    cleaned = _PRINTUSASCII_BAD.sub("_", value)[:limit]
    return cleaned or "-"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _sd_name(name: str) -> str:
    return (_SD_NAME_BAD.sub("_", name) or "_")[:32]


def format_5424(
    record: Record,
    *,
    timestamp: str,
    source: str,
    facility: int = 1,
    lf_safe: bool = False,
) -> bytes:
    """One RFC 5424 message (without framing) for *record*.

    HOSTNAME is the record's host or else *source*'s host; APP-NAME the
    record's app or else its logger; the logger, level name, dialect,
    sender and plain extra fields go into the ``netkit@32473`` SD element.
    *lf_safe* writes newlines (in the message and SD values) as ``#012`` (rsyslog's
    convention), for LF-framed transport where a newline ends a record.
    """
    level = record.level if record.level is not None else INFO
    pri = facility * 8 + severity_from_level(level)
    host = record.host or source.rsplit(":", 1)[0].strip("[]")
    app = record.app or record.logger
    params = [("dialect", record.dialect), ("level", level_name(level)), ("source", source)]
    if record.logger:
        params.append(("logger", record.logger))
    for key, value in record.fields.items():
        if isinstance(value, (str, int, float, bool)) and key not in ("exc_text",):
            params.append((key, str(value)))
    pairs = " ".join(f'{_sd_name(k)}="{_sd_value(v)}"' for k, v in params)
    sd = f"[netkit@{PEN} {pairs}]"
    head = f"<{pri}>1 {timestamp} {_header_field(host, 255)} {_header_field(app, 48)} - - "
    out = head.encode("ascii") + sd.encode("utf-8", "surrogateescape")
    if record.message:
        out += b" " + record.message
    return out.replace(b"\n", b"#012") if lf_safe else out


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``LEN SP MSG``."""
    return b"%d %s" % (len(message), message)

"""One instant in every encoding netkit's time protocols use, with the rollover dates.

``tcp-time encode``: RFC 867 daytime text, RFC 868's 32-bit seconds since
1900, NTP's 64-bit timestamp (seconds, fraction, era) and Unix time, plus
when each runs out: RFC 868's field and NTP's era 0 both wrap on
2036-02-07T06:28:16Z (2^32 s after 1900), a signed 32-bit ``time_t`` on
2038-01-19T03:14:08Z (2^31 s after 1970).  Pure: the caller gives the instant.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from netkit.protocols import ntp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_T32_MAX = (1 << 31) - 1
TIME_T32_MIN = -(1 << 31)
#: datetime's range, the instants this can show
MIN_UNIX = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_UNIX = 253_402_300_799  # 9999-12-31T23:59:59Z

_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def iso(unix: float) -> str:
    """Unix time -> ISO 8601 UTC with a Z, microseconds only when there are some."""
    moment = EPOCH + timedelta(seconds=unix)
    text = f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_when(text: str) -> float:
    """``WHEN``: a Unix time (``1700000000``, ``-1.5``) or an ISO 8601 time.

    An ISO time without a zone is read as UTC.  ValueError says what is wrong.
    """
    s = text.strip()
    if _NUMBER.fullmatch(s):
        unix = float(s)
    else:
        try:
            moment = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a Unix time nor an ISO 8601 time (e.g. 2036-02-07T06:28:16Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        unix = (moment - EPOCH).total_seconds()
    if not MIN_UNIX <= unix <= MAX_UNIX:
        raise ValueError(f"{text!r} is outside the years 1-9999")
    return unix


def _spaced(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def encode(unix: float) -> dict[str, Any]:
    """Every encoding of *unix* (seconds since 1970, UTC) as a JSON-ready dict."""
    whole = math.floor(unix)
    era = ntp.ntp_era(unix)
    next_wrap = era * ntp.ERA_SECONDS + ntp.ERA_SECONDS - ntp.NTP_UNIX_OFFSET
    era_start = era * ntp.ERA_SECONDS - ntp.NTP_UNIX_OFFSET
    stamp = ntp.to_ntp(unix)
    seconds, fraction = ntp.split(stamp)
    rfc868 = seconds  # RFC 868's field is NTP's seconds field
    fits32 = TIME_T32_MIN <= whole <= TIME_T32_MAX
    try:
        daytime = time.ctime(whole)
    except (OverflowError, ValueError, OSError):
        daytime = None
    return {
        "unix": unix,
        "iso": iso(unix),
        "rfc867": daytime,
        "rfc868": {
            "value": rfc868,
            "bytes": _spaced(rfc868.to_bytes(4, "big")),
            "era": era,
            "wraps": iso(next_wrap) if next_wrap <= MAX_UNIX else None,
        },
        "ntp": {
            "seconds": seconds,
            "fraction": fraction,
            "fraction_seconds": fraction / ntp.FRACTION,
            "bytes": _spaced(stamp.to_bytes(8, "big")),
            "era": era,
            "era_began": iso(era_start) if era_start >= MIN_UNIX else None,
            "next_era": iso(next_wrap) if next_wrap <= MAX_UNIX else None,
        },
        "time_t32": {
            "value": whole if fits32 else None,
            "bytes": _spaced(whole.to_bytes(4, "big", signed=True)) if fits32 else None,
            "wraps": iso(TIME_T32_MAX + 1),
        },
    }

"""What one DNS query type got from a server, in words (pure; no sockets)."""

from __future__ import annotations

ANSWER = "answer"
NODATA = "nodata"
NXDOMAIN = "nxdomain"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"

_TEXT = {
    ANSWER: "answer",
    NODATA: "NODATA (the name exists, no record of this type)",
    NXDOMAIN: "NXDOMAIN (no such name)",
    TIMEOUT: "no answer (timeout)",
    UNREACHABLE: "port unreachable (ICMP)",
}


def describe_status(status: str) -> str:
    """``refused`` -> ``REFUSED``, ``nodata`` -> ``NODATA (...)``: for people."""
    return _TEXT.get(status, status.upper())

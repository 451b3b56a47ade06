"""Events of resolve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class Resolved(Event):
    """resolve: what a name or address lookup found."""

    event: ClassVar[str] = "resolved"
    query: str
    kind: str  # "forward" or "reverse"
    canonical: str
    aliases: list[str]
    addresses: list[str]
    ipv4: list[str]
    ipv6: list[str]
    fqdn: str
    source: str  # "system resolver" or "dns 127.0.0.1:53"
    records: list[dict[str, Any]] = field(default_factory=list)
    # with --server: what each query type got (answer, nodata, nxdomain,
    # refused, servfail, ..., timeout, unreachable)
    status: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unresolved(Event):
    """resolve --json: a query that found nothing (also an ``Error:`` line, exit 1)."""

    event: ClassVar[str] = "unresolved"
    query: str
    source: str  # "system resolver" or "dns 127.0.0.1:53"
    error: str
    status: dict[str, str] = field(default_factory=dict)  # with --server, per type

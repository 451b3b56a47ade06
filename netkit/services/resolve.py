"""Name and address lookups: the system resolver, or one DNS server directly.

The system path uses what the lecture shows (getaddrinfo with AI_CANONNAME,
gethostbyname_ex for aliases, gethostbyaddr for reverse, getfqdn); the
``server`` path asks one DNS server with dnspython.  Both are bounded by a
timeout and fail with :class:`netkit.net.NetError` carrying one clear line.
"""

from __future__ import annotations

import socket
from typing import Any, TypeVar

from netkit.events.resolve import Resolved
from netkit.net import NetError, family_of, format_host, is_ip_address
from netkit.net import bounded as _bounded
from netkit.protocols.dnsstatus import (
    ANSWER,
    NODATA,
    NXDOMAIN,
    TIMEOUT,
    UNREACHABLE,
    describe_status,
)

T = TypeVar("T")

RECORD_TYPES = ("A", "AAAA", "PTR", "CNAME", "MX", "NS", "TXT", "SOA")


def _split(addresses: list[str]) -> tuple[list[str], list[str]]:
    v4 = [a for a in addresses if ":" not in a]
    v6 = [a for a in addresses if ":" in a]
    return v4, v6


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _forward(query: str, version: int | None) -> Resolved:
    try:
        infos = socket.getaddrinfo(
            query, None, family_of(version), socket.SOCK_STREAM, 0, socket.AI_CANONNAME
        )
    except socket.gaierror as exc:
        fam = {4: " (IPv4)", 6: " (IPv6)"}.get(version or 0, "")
        raise NetError(f"cannot resolve {query!r}{fam}: {exc.strerror}") from exc
    except UnicodeError as exc:
        raise NetError(f"cannot resolve {query!r}: not a valid host name ({exc})") from exc
    canonical = next((canon for *_, canon, _sa in infos if canon), query)
    addresses = _unique([str(sa[0]) for *_, sa in infos])
    aliases: list[str] = []
    if version != 6:
        try:
            name, aliases, _addrs = socket.gethostbyname_ex(query)
            canonical = canonical or name
        except (OSError, UnicodeError):
            aliases = []  # e.g. a name with only IPv6 addresses
    v4, v6 = _split(addresses)
    return Resolved(
        query=query,
        kind="forward",
        canonical=canonical,
        aliases=[a for a in _unique(aliases) if a != canonical],
        addresses=addresses,
        ipv4=v4,
        ipv6=v6,
        fqdn=socket.getfqdn(query),
        source="system resolver",
    )


def _reverse(query: str) -> Resolved:
    try:
        name, aliases, addrs = socket.gethostbyaddr(query)
    except socket.herror as exc:
        raise NetError(f"no name for {query}: {exc.strerror}") from exc
    except socket.gaierror as exc:
        raise NetError(f"cannot look up {query!r}: {exc.strerror}") from exc
    v4, v6 = _split(addrs)
    return Resolved(
        query=query,
        kind="reverse",
        canonical=name,
        aliases=_unique(aliases),
        addresses=_unique(addrs),
        ipv4=v4,
        ipv6=v6,
        fqdn=socket.getfqdn(query),
        source="system resolver",
    )


def resolve_system(query: str, *, version: int | None = None, timeout: float = 5.0) -> Resolved:
    """Look *query* up with the system resolver (forward, or reverse for an address)."""
    if is_ip_address(query):
        return _bounded(lambda: _reverse(query), timeout, f"reverse lookup of {query}")
    return _bounded(lambda: _forward(query, version), timeout, f"lookup of {query!r}")


class LookupFailed(NetError):
    """Nothing found at a DNS server; *status* says what each query type got."""

    def __init__(self, message: str, status: dict[str, str]) -> None:
        super().__init__(message)
        self.status = status


RESEND_AFTER = 1.0  # seconds before a UDP query is sent again (loss on the way)


def _query_all(queries: dict[str, Any], server: str, port: int, timeout: float) -> dict[str, Any]:
    """Send every query at once over its own connected UDP socket; wait for all.

    Returns type -> a dns.message.Message, or TIMEOUT / UNREACHABLE.  A
    connected socket hears the ICMP port-unreachable a closed port sends back
    (ECONNREFUSED), so a server that is not there is reported at once, as dig
    does; a truncated answer is asked again over TCP.  The whole exchange is
    bounded by *timeout*.
    """
    import select
    import time

    import dns.exception
    import dns.flags
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    results: dict[str, Any] = {}
    socks: dict[socket.socket, str] = {}
    wires = {t: q.to_wire() for t, q in queries.items()}
    try:
        for t in queries:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            socks[sock] = t
            sock.setblocking(False)
            try:
                sock.connect((server, port))
                sock.send(wires[t])
            except ConnectionRefusedError:
                results[t] = UNREACHABLE
        last_send = time.monotonic()
        while len(results) < len(queries):
            now = time.monotonic()
            if now >= deadline:
                break
            if now - last_send >= RESEND_AFTER:
                for sock, t in socks.items():
                    if t not in results:
                        try:
                            sock.send(wires[t])
                        except ConnectionRefusedError:
                            results[t] = UNREACHABLE
                last_send = now
            waiting = [sock for sock, t in socks.items() if t not in results]
            if not waiting:
                break
            wait = min(deadline - now, RESEND_AFTER - (now - last_send))
            ready, _, _ = select.select(waiting, [], [], max(wait, 0.0))
            for sock in ready:
                t = socks[sock]
                try:
                    data = sock.recv(65535)
                except ConnectionRefusedError:
                    results[t] = UNREACHABLE
                    continue
                except OSError:
                    continue
                try:
                    reply = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    continue  # not a DNS message: keep waiting for the answer
                if not queries[t].is_response(reply):
                    continue  # a stale or forged reply
                if reply.flags & dns.flags.TC:
                    remaining = max(deadline - time.monotonic(), 0.001)
                    try:
                        reply = dns.query.tcp(queries[t], server, timeout=remaining, port=port)
                    except (dns.exception.Timeout, TimeoutError):
                        results[t] = TIMEOUT
                        continue
                    except ConnectionRefusedError:
                        results[t] = UNREACHABLE
                        continue
                results[t] = reply
    finally:
        for sock in socks:
            sock.close()
    for t in queries:
        results.setdefault(t, TIMEOUT)
    return results


def resolve_dns(
    query: str,
    server: str,
    port: int = 53,
    *,
    version: int | None = None,
    rtype: str | None = None,
    timeout: float = 5.0,
) -> Resolved:
    """Ask one DNS server directly: A and AAAA, PTR for an address, or *rtype*.

    Every type asked gets a status (``answer``, ``nodata``, ``nxdomain``,
    ``refused``, ``servfail``, ... , ``timeout``, ``unreachable``); the lookup
    succeeds when any of them found what was asked (an address, or a record of
    *rtype*), and fails with one line naming each status otherwise.
    """
    import dns.exception
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.reversename

    where = f"{format_host(server)}:{port}"
    reverse = is_ip_address(query)
    if rtype:
        types = [rtype.upper()]
    elif reverse:
        types = ["PTR"]
    else:
        types = [t for t, v in (("A", 4), ("AAAA", 6)) if version in (None, v)]
    try:
        qname = (
            dns.reversename.from_address(query.split("%", 1)[0])
            if reverse and (rtype or "PTR").upper() == "PTR"
            else dns.name.from_text(query)
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise NetError(f"{query!r} is not a valid DNS name: {exc}") from exc

    queries = {t: dns.message.make_query(qname, dns.rdatatype.from_text(t)) for t in types}
    try:
        replies = _query_all(queries, server, port, timeout)
    except OSError as exc:
        from netkit.net import describe_error

        raise NetError(describe_error(exc, f"{query!r}: DNS query to {where}")) from exc

    records: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    status: dict[str, str] = {}
    cnames: dict[str, str] = {}  # alias -> target, as the answers chain them
    for t in types:
        reply = replies[t]
        if isinstance(reply, str):
            status[t] = reply
            continue
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            status[t] = dns.rcode.to_text(rcode).lower()
            continue
        wanted = dns.rdatatype.from_text(t)
        found = False
        for rrset in reply.answer:
            kind = dns.rdatatype.to_text(rrset.rdtype)
            name = rrset.name.to_text()
            for rd in rrset:
                value = rd.to_text()
                if rrset.rdtype == wanted:
                    found = True
                if rrset.rdtype == dns.rdatatype.CNAME:
                    cnames[name.rstrip(".").lower()] = value.rstrip(".")
                if (kind, name, value) in seen:
                    continue  # the same CNAME comes with the A and the AAAA answer
                seen.add((kind, name, value))
                records.append({"type": kind, "name": name, "value": value, "ttl": rrset.ttl})
        status[t] = ANSWER if found else NODATA

    # the canonical name: follow the CNAME chain from the name asked (bounded)
    canonical = qname.to_text(omit_final_dot=True)
    aliases: list[str] = []
    for _ in range(16):
        target = cnames.get(canonical.lower())
        if target is None or target in aliases or target == canonical:
            break
        aliases.append(canonical)
        canonical = target
    addresses = _unique([r["value"] for r in records if r["type"] in ("A", "AAAA")])
    v4, v6 = _split(addresses)
    if reverse and not rtype:
        ptrs = [str(r["value"]).rstrip(".") for r in records if r["type"] == "PTR"]
        canonical, aliases = (ptrs[0], ptrs[1:]) if ptrs else ("", [])
    if ANSWER not in status.values():
        raise LookupFailed(_nothing_found(query, where, status, timeout, reverse=reverse), status)
    return Resolved(
        query=query,
        kind="reverse" if reverse else "forward",
        canonical=canonical,
        aliases=_unique(aliases),
        addresses=addresses,
        ipv4=v4,
        ipv6=v6,
        fqdn="",
        source=f"dns {where}",
        records=records,
        status=status,
    )


def _nothing_found(
    query: str, where: str, status: dict[str, str], timeout: float, *, reverse: bool
) -> str:
    got = set(status.values())
    each = ", ".join(f"{t}: {describe_status(s)}" for t, s in status.items())
    if got == {UNREACHABLE}:
        return (
            f"{query!r}: DNS server {where} is not there: its port is unreachable "
            "(ICMP; is a DNS server listening on that port?)"
        )
    if got == {TIMEOUT}:
        return f"{query!r}: no answer from DNS server {where} within {timeout:g} s"
    if got == {NXDOMAIN}:
        return f"{query!r}: no such domain (NXDOMAIN from {where})"
    if got == {NODATA}:
        if reverse and list(status) == ["PTR"]:
            return f"no name for {query} at DNS server {where}"
        return f"{query!r}: no {'/'.join(status)} records at DNS server {where}"
    return f"{query!r}: nothing found at DNS server {where} ({each})"


def parse_server(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` for --server; ValueError if not an IP."""
    import ipaddress  # (only --server needs it: a lookup of the system's does not)

    from netkit.net import split_host_port

    host, port = split_host_port(text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: --server takes an IP address, not a name") from None
    return host, 53 if port is None else port

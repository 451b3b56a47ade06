"""Name and address lookups: the system resolver, or one DNS server directly.

The system path uses what the lecture shows (getaddrinfo with AI_CANONNAME,
gethostbyname_ex for aliases, gethostbyaddr for reverse, getfqdn); the
``server`` path asks one DNS server with dnspython.  Both are bounded by a
timeout and fail with :class:`netkit.net.NetError` carrying one clear line.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from netkit.events.resolve import Resolved
from netkit.net import NetError, family_of, format_host, is_ip_address

T = TypeVar("T")

RECORD_TYPES = ("A", "AAAA", "PTR", "CNAME", "MX", "NS", "TXT", "SOA")


def _bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a blocking lookup in a daemon thread; give up after *timeout* seconds.

    The libc resolver has no timeout of its own that a caller can set; a
    daemon thread lets the command exit on time even if the lookup hangs.
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=run, name="netkit-resolve", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise NetError(f"{what}: no answer from the system resolver within {timeout:g} s") from None
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


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


def resolve_dns(
    query: str,
    server: str,
    port: int = 53,
    *,
    version: int | None = None,
    rtype: str | None = None,
    timeout: float = 5.0,
) -> Resolved:
    """Ask one DNS server directly (dnspython): A/AAAA, PTR for an address, or *rtype*."""
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.resolver
    import dns.reversename

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
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

    records: list[dict[str, Any]] = []
    canonical = ""
    aliases: list[str] = []
    for t in types:
        try:
            answer = resolver.resolve(qname, t, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise NetError(f"{query!r}: no such domain (NXDOMAIN from {where})") from exc
        except dns.resolver.LifetimeTimeout as exc:
            raise NetError(
                f"{query!r}: no answer from DNS server {where} within {timeout:g} s"
            ) from exc
        except dns.resolver.NoNameservers as exc:
            raise NetError(f"{query!r}: DNS server {where} failed to answer ({exc})") from exc
        except dns.exception.DNSException as exc:
            raise NetError(f"{query!r}: DNS query to {where} failed: {exc}") from exc
        canonical = canonical or answer.canonical_name.to_text(omit_final_dot=True)
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                aliases.append(rrset.name.to_text(omit_final_dot=True))
                for rd in rrset:
                    records.append(
                        {
                            "type": "CNAME",
                            "name": rrset.name.to_text(),
                            "value": rd.to_text(),
                            "ttl": rrset.ttl,
                        }
                    )
        if answer.rrset is not None:
            for rd in answer.rrset:
                records.append(
                    {
                        "type": t,
                        "name": answer.rrset.name.to_text(),
                        "value": rd.to_text(),
                        "ttl": answer.rrset.ttl,
                    }
                )
    addresses = _unique([r["value"] for r in records if r["type"] in ("A", "AAAA")])
    v4, v6 = _split(addresses)
    ptrs = [str(r["value"]).rstrip(".") for r in records if r["type"] == "PTR"]
    if reverse and ptrs:
        canonical = ptrs[0]
        aliases = ptrs[1:]
    if reverse and not ptrs and not rtype:
        raise NetError(f"no name for {query} at DNS server {where}")
    if not records:
        raise NetError(f"{query!r}: no {'/'.join(types)} records at DNS server {where}")
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
    )


def parse_server(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` for --server; ValueError if not an IP."""
    from netkit.net import split_host_port

    host, port = split_host_port(text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: --server takes an IP address, not a name") from None
    return host, 53 if port is None else port

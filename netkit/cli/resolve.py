"""netkit resolve: getaddrinfo, gethostbyname_ex, gethostbyaddr, getfqdn, or DNS directly."""

from __future__ import annotations

import sys

import click

from netkit.cli._common import TIMEOUT, family_options, handle_failures, output_options, renderer

_TYPES = ("A", "AAAA", "PTR", "CNAME", "MX", "NS", "TXT", "SOA")


@click.command("resolve")
@click.argument("queries", metavar="QUERY...", nargs=-1, required=True)
@family_options
@click.option(
    "--server",
    metavar="IP[:PORT]",
    help="Ask this DNS server directly (dnspython) instead of the system resolver.",
)
@click.option(
    "--type",
    "rtype",
    type=click.Choice(_TYPES, case_sensitive=False),
    help="Record type to ask --server for (default: A and AAAA, or PTR for an address).",
)
@click.option(
    "-t",
    "--timeout",
    type=TIMEOUT,
    default=5.0,
    show_default=True,
    help="Seconds to wait for an answer before giving up (exit 1).",
)
@output_options
@handle_failures
def resolve(
    queries: tuple[str, ...],
    version: int | None,
    server: str | None,
    rtype: str | None,
    timeout: float,
    json_output: bool,
    no_color: bool,
) -> None:
    """Look up QUERY: a host name (forward) or an IP address (reverse).

    Shows the canonical name, aliases, addresses per family and the fully
    qualified name, as the system resolver (/etc/hosts, DNS, ...) sees them.
    With --server, asks that DNS server directly and shows what each query
    type got (answer, NODATA, NXDOMAIN, REFUSED, SERVFAIL, timeout); a name
    with any address found is a success.  Several QUERYs give one result
    each (exit 1 if any found nothing).

    \b
    Examples:
      netkit resolve localhost
      netkit resolve -6 localhost
      netkit resolve 127.0.0.1
      netkit resolve --server 127.0.0.1:5353 example.test
      netkit resolve --json localhost example.com 127.0.0.1
    """
    from netkit import net
    from netkit.net import NetError
    from netkit.services import resolve as service

    for query in queries:
        if not query.strip():
            raise click.BadParameter("empty name", param_hint="'QUERY'")
    if rtype and not server:
        raise click.UsageError("--type needs --server (the system resolver has no record types)")
    address: tuple[str, int] | None = None
    if server:
        try:
            address = service.parse_server(server)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--server'") from None
    out = renderer(json_output, no_color)
    failed = 0
    for query in queries:
        try:
            if address is not None:
                result = service.resolve_dns(
                    query, *address, version=version, rtype=rtype, timeout=timeout
                )
            else:
                result = service.resolve_system(query, version=version, timeout=timeout)
        except NetError as exc:
            if json_output:  # scripts get one object per query, failures too
                from netkit.events.resolve import Unresolved

                source = "system resolver" if address is None else "dns " + net.format_peer(address)
                status = getattr(exc, "status", {})
                out(Unresolved(query=query, source=source, error=str(exc), status=status))
            if len(queries) == 1:
                raise
            failed += 1
            click.echo(f"Error: {exc}", err=True)
            continue
        out(result)
    out.close()
    if failed:
        sys.exit(1)

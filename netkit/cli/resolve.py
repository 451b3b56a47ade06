"""netkit resolve: getaddrinfo, gethostbyname_ex, gethostbyaddr, getfqdn, or DNS directly."""

from __future__ import annotations

import click

from netkit.cli._common import TIMEOUT, family_options, handle_failures, output_options, renderer

_TYPES = ("A", "AAAA", "PTR", "CNAME", "MX", "NS", "TXT", "SOA")


@click.command("resolve")
@click.argument("query")
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
    query: str,
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
    With --server, asks that DNS server directly.

    \b
    Examples:
      netkit resolve localhost
      netkit resolve -6 localhost
      netkit resolve 127.0.0.1
      netkit resolve --server 127.0.0.1:5353 example.test
    """
    from netkit.services import resolve as service

    if not query.strip():
        raise click.BadParameter("empty name", param_hint="'QUERY'")
    if rtype and not server:
        raise click.UsageError("--type needs --server (the system resolver has no record types)")
    out = renderer(json_output, no_color)
    if server:
        try:
            host, port = service.parse_server(server)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--server'") from None
        result = service.resolve_dns(
            query, host, port, version=version, rtype=rtype, timeout=timeout
        )
    else:
        result = service.resolve_system(query, version=version, timeout=timeout)
    out(result)
    out.close()

"""netkit resolve: the system resolver, and a real DNS server (dnsmasq) of the tests' own."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from netkit.net import NetError
from netkit.services.resolve import resolve_dns, resolve_system
from tests.helpers import peer

HOSTS = """\
127.0.0.42 example.test alias.example.test
::42 example.test
127.0.0.43 v4only.test
fd00::43 v6only.test
"""
ESC_TXT = "\x1b]52;c;aGk=\x07\x1b[31mred[/]"


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), prog_name="netkit")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dnsmasq(
    binary: str, tmp: Path, hosts: Path, *, local: bool = True, probe: str = "example.test"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start dnsmasq on a free loopback port; (process, "127.0.0.1:PORT") once it answers.

    With *local*, names under .test it does not know are NXDOMAIN; without,
    it has no upstream and REFUSES what it cannot answer from *hosts*.

    The port is free for UDP when chosen, but dnsmasq binds TCP on it too;
    if that is taken it exits at once, and another port is tried (5 at most).
    """
    errors = []
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                f"--addn-hosts={hosts}",
                f"--port={port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
                f"--pid-file={tmp / 'pid'}",
                *(["--local=/test/"] if local else []),
                f"--txt-record=esc.test,{ESC_TXT}",
                "--cname=www.example.test,example.test",
                "--mx-host=example.test,mail.example.test,10",
                "--log-facility=-",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Wait for it to answer: each try is a query bounded by its own timeout.
        for _ in range(50):
            try:
                resolve_dns(probe, "127.0.0.1", port, version=4, timeout=0.2)
                return proc, f"127.0.0.1:{port}"
            except NetError:
                if proc.poll() is not None:
                    break
        proc.kill()
        _out, err = proc.communicate(timeout=5)
        errors.append(err.decode(errors="replace").strip())
    pytest.fail(f"dnsmasq did not start on a free port: {errors}")


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dnsmasq on a loopback port, answering from a hosts file of the tests' own."""
    binary = peer("dnsmasq")
    tmp = tmp_path_factory.mktemp("dnsmasq")
    hosts = tmp / "hosts"
    hosts.write_text(HOSTS)
    proc, server = start_dnsmasq(binary, tmp, hosts)
    try:
        yield server
    finally:
        proc.terminate()
        proc.communicate(timeout=5)


# -- system resolver -------------------------------------------------------------


def test_localhost_forward() -> None:
    result = resolve_system("localhost", version=4)
    assert "127.0.0.1" in result.ipv4
    assert result.kind == "forward"
    assert result.addresses == result.ipv4 + result.ipv6


def test_loopback_reverse(runner: CliRunner) -> None:
    result = invoke(runner, "resolve", "--json", "127.0.0.1")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["event"] == "resolved" and obj["kind"] == "reverse"
    assert obj["query"] == "127.0.0.1"
    assert obj["canonical"] == socket.gethostbyaddr("127.0.0.1")[0]
    assert "127.0.0.1" in obj["addresses"]


def test_cli_json_fields(runner: CliRunner) -> None:
    obj = json.loads(invoke(runner, "resolve", "--json", "localhost").stdout)
    for key in ("query", "canonical", "aliases", "addresses", "fqdn"):
        assert key in obj
    assert isinstance(obj["addresses"], list) and "127.0.0.1" in obj["addresses"]


def test_human_output(runner: CliRunner) -> None:
    result = invoke(runner, "resolve", "localhost")
    assert result.exit_code == 0
    assert "127.0.0.1" in result.stdout
    assert "canonical" in result.stdout


def test_unresolvable_name_is_one_line_exit_1(runner: CliRunner) -> None:
    result = invoke(runner, "resolve", "no-such-host.invalid")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "no-such-host.invalid" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "MX", "localhost"], "--type needs --server"),
        (["--server", "dns.example", "x.test"], "IP address, not a name"),
        (["--server", "127.0.0.1:99999", "x.test"], "out of range"),
        (["--timeout", "-1", "localhost"], "--timeout"),
        (["  "], "empty name"),
    ],
)
def test_bad_input_is_a_usage_error(runner: CliRunner, args: list[str], message: str) -> None:
    result = invoke(runner, "resolve", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


# -- one DNS server, directly ----------------------------------------------------------


def test_dns_forward_both_families(runner: CliRunner, dns_server: str) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, "--json", "example.test")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["ipv4"] == ["127.0.0.42"]
    assert obj["ipv6"] == ["::42"]
    assert obj["source"] == f"dns {dns_server}"
    assert {r["type"] for r in obj["records"]} == {"A", "AAAA"}


@pytest.mark.parametrize(("flag", "want"), [("-4", ["127.0.0.43"]), ("-6", [])])
def test_dns_family_flag(runner: CliRunner, dns_server: str, flag: str, want: list[str]) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, flag, "--json", "v4only.test")
    if want:
        assert json.loads(result.stdout)["addresses"] == want
    else:
        assert result.exit_code == 1
        assert "no AAAA records" in result.output


def test_dns_ipv6_only_name(dns_server: str) -> None:
    host, port = dns_server.split(":")
    got = resolve_dns("v6only.test", host, int(port), version=6, timeout=2)
    assert got.ipv6 == ["fd00::43"] and got.ipv4 == []


def test_dns_reverse_ptr(runner: CliRunner, dns_server: str) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, "--json", "127.0.0.42")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["kind"] == "reverse"
    assert obj["canonical"] == "example.test"


def test_dns_mx_type(runner: CliRunner, dns_server: str) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, "--type", "MX", "example.test")
    assert result.exit_code == 0, result.output
    assert "10 mail.example.test." in result.stdout


def test_dns_nxdomain(runner: CliRunner, dns_server: str) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, "nosuch.test")
    assert result.exit_code == 1
    assert "no such domain (NXDOMAIN" in result.output
    assert result.output.count("\n") == 1


def test_dns_untrusted_txt_is_shown_escaped(runner: CliRunner, dns_server: str) -> None:
    result = invoke(runner, "resolve", "--server", dns_server, "--type", "TXT", "esc.test")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "red[/]" in result.stdout  # markup shown as text, not interpreted


def test_dns_silent_server_times_out(runner: CliRunner) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = invoke(
            runner, "resolve", "--server", f"127.0.0.1:{port}", "--timeout", "0.3", "x.test"
        )
    assert result.exit_code == 1
    assert "no answer from DNS server" in result.output


def test_dns_server_written_with_brackets(dns_server: str, tmp_path: Path) -> None:
    from netkit.services.resolve import parse_server

    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)

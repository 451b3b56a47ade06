"""netkit pack-ip through click's CliRunner."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from netkit.cli import cli


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), prog_name="netkit")


def test_json_fields_for_the_issue_example(runner: CliRunner) -> None:
    result = invoke(runner, "pack-ip", "--json", "192.168.1.1")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["event"] == "address"
    assert obj["address"] == "192.168.1.1"
    assert obj["family"] == 4
    assert obj["packed"] == "c0a80101"
    assert obj["integer"] == 3232235777
    expected_host = 0x0101A8C0 if sys.byteorder == "little" else 0xC0A80101
    assert obj["host_order_integer"] == expected_host


@pytest.mark.parametrize("value", ["3232235777", "0xc0a80101", "0xC0A80101"])
def test_integers_go_the_other_way(runner: CliRunner, value: str) -> None:
    obj = json.loads(invoke(runner, "pack-ip", "--json", value).stdout)
    assert obj["address"] == "192.168.1.1"
    assert obj["packed"] == "c0a80101"


def test_ipv6(runner: CliRunner) -> None:
    obj = json.loads(invoke(runner, "pack-ip", "--json", "2001:db8::1").stdout)
    assert obj["family"] == 6
    assert obj["packed"] == "20010db8000000000000000000000001"
    assert obj["integer"] == 0x20010DB8000000000000000000000001
    assert obj["host_order_integer"] is None


def test_human_output_explains_byte_order(runner: CliRunner) -> None:
    result = invoke(runner, "pack-ip", "192.168.1.1")
    assert result.exit_code == 0
    assert "c0 a8 01 01" in result.stdout
    assert "3232235777" in result.stdout
    assert "network byte order" in result.stdout
    assert "struct.unpack('=I'" in result.stdout


def test_short_mode_shows_htons(runner: CliRunner) -> None:
    obj = json.loads(invoke(runner, "pack-ip", "--short", "--json", "8080").stdout)
    assert obj == {
        "event": "port",
        "port": 8080,
        "packed": "1f90",
        "host_order_integer": 0x901F if sys.byteorder == "little" else 8080,
        "host_byteorder": sys.byteorder,
        "input": "8080",
    }
    human = invoke(runner, "pack-ip", "-s", "8080").stdout
    assert "htons()" in human and "1f 90" in human


@pytest.mark.parametrize("value", ["65536", "-1", "http", ""])
def test_short_mode_rejects_non_ports(runner: CliRunner, value: str) -> None:
    result = invoke(runner, "pack-ip", "--short", "--", value)
    assert result.exit_code == 2
    assert "16-bit port" in result.output


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("127.1", "has 2 parts"),
        ("0x7f.1", "hex part"),
        ("010.0.0.1", "leading zero"),
        ("1.2.3.4 junk", "white space"),
        ("256.1.1.1", "out of range"),
        ("", "empty address"),
    ],
)
def test_strict_by_default(runner: CliRunner, value: str, why: str) -> None:
    result = invoke(runner, "pack-ip", value)
    assert result.exit_code == 2
    assert why in result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("010.0.0.1", "8.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("1.2.3.4 junk", "1.2.3.4"),
    ],
)
def test_inet_aton_mode(runner: CliRunner, value: str, address: str) -> None:
    result = invoke(runner, "pack-ip", "--inet-aton", "--json", value)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["address"] == address
    assert obj["read_as"].startswith("inet_aton form")
    human = invoke(runner, "pack-ip", "--inet-aton", value).stdout
    assert address in human and "inet_aton form" in human


def test_inet_aton_mode_still_rejects_garbage(runner: CliRunner) -> None:
    result = invoke(runner, "pack-ip", "--inet-aton", "256.1.1.1")
    assert result.exit_code == 2
    assert "inet_aton" in result.output


def test_family_flags(runner: CliRunner) -> None:
    assert json.loads(invoke(runner, "pack-ip", "-6", "--json", "1").stdout)["address"] == "::1"
    result = invoke(runner, "pack-ip", "-4", "::1")
    assert result.exit_code == 2
    assert "IPv6 address, not IPv4" in result.output

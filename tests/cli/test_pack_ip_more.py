"""pack-ip: mapped IPv4, strict --short, several values and stdin, -q, CIDR,
and explanations wrapped at word boundaries (issue 14 items 5, 8, 26, batch use)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from tests.helpers import NETKIT, env, read_pty


def invoke(runner: CliRunner, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["pack-ip", *args], input=stdin, prog_name="netkit")


def objects(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_mapped_ipv4_is_named(runner: CliRunner) -> None:
    (obj,) = objects(invoke(runner, "--json", "::ffff:192.168.1.1").stdout)
    assert obj["mapped_ipv4"] == "192.168.1.1"
    assert obj["family"] == 6
    human = invoke(runner, "::ffff:192.168.1.1").stdout
    assert "192.168.1.1" in human and "IPv4-mapped" in human
    (plain,) = objects(invoke(runner, "--json", "2001:db8::1").stdout)
    assert plain["mapped_ipv4"] is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (" 80", "white space"),
        ("80 ", "white space"),
        ("080", "leading zero, which C's strtol(s, 0) reads as octal"),
        ("010", "octal 8"),
        ("\u0668\u0660", "is not an ASCII digit"),  # Arabic-Indic 80
        ("\uff18\uff10", "is not an ASCII digit"),  # fullwidth 80
        ("+80", "unexpected character '+'"),
        ("8_0", "unexpected character '_'"),
        ("0x", "0x needs hex digits"),
        ("65536", "too large"),
    ],
)
def test_short_is_strict(runner: CliRunner, value: str, why: str) -> None:
    result = invoke(runner, "--short", "--", value)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "16-bit port" in errors[0] and why in errors[0], result.output


@pytest.mark.parametrize(("value", "port"), [("0", 0), ("80", 80), ("0x1f90", 8080)])
def test_short_accepts_plain_numbers(runner: CliRunner, value: str, port: int) -> None:
    (obj,) = objects(invoke(runner, "--short", "--json", value).stdout)
    assert obj["port"] == port


def test_several_values_one_result_each(runner: CliRunner) -> None:
    result = invoke(runner, "--json", "10.0.0.1", "3232235777", "::1", "10.0.0.0/8")
    assert result.exit_code == 0, result.output
    got = objects(result.stdout)
    assert [o["event"] for o in got] == ["address", "address", "address", "network"]
    assert [o["input"] for o in got] == ["10.0.0.1", "3232235777", "::1", "10.0.0.0/8"]


def test_values_from_stdin(runner: CliRunner) -> None:
    stdin = "10.0.0.1\n\n3232235777\r\n::1\n"
    for args in ((), ("-",)):
        result = invoke(runner, "--json", *args, stdin=stdin)
        assert result.exit_code == 0, result.output
        assert [o["address"] for o in objects(result.stdout)] == [
            "10.0.0.1",
            "192.168.1.1",
            "::1",
        ]


def test_a_bad_value_among_several(runner: CliRunner) -> None:
    result = invoke(runner, "-q", "10.0.0.1", "127.1", "0xc0a80101")
    assert result.exit_code == 2
    # (click 8.1's runner mixes stderr into stdout)
    results = [line for line in result.stdout.splitlines() if not line.startswith("Error:")]
    assert results == ["167772161", "192.168.1.1"]
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "'127.1'" in errors[0]
    assert "Traceback" not in result.output


def test_a_bad_value_among_several_in_json(runner: CliRunner) -> None:
    result = invoke(runner, "--json", "10.0.0.1", "127.1")
    assert result.exit_code == 2
    got = objects(result.stdout)
    assert [(o["event"], o["input"]) for o in got] == [
        ("address", "10.0.0.1"),
        ("invalid", "127.1"),
    ]
    assert "has 2 parts" in str(got[1]["error"])


def test_empty_stdin_is_a_missing_value(runner: CliRunner) -> None:
    result = invoke(runner, stdin="")
    assert result.exit_code == 2
    assert "Missing argument 'VALUE'" in result.output


def test_quiet_prints_the_bare_value() -> None:
    proc = subprocess.run(
        [NETKIT, "pack-ip", "-q", "3232235777"], capture_output=True, text=True, timeout=20
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "192.168.1.1\n", "")


@pytest.mark.parametrize(
    ("args", "bare"),
    [
        (("192.168.1.1",), "3232235777"),
        (("0xc0a80101",), "192.168.1.1"),
        (("::1",), "1"),
        (("-6", "1"), "::1"),
        (("192.168.1.7/24",), "192.168.1.0/24"),
        (("--short", "8080"), "36895" if sys.byteorder == "little" else "8080"),
        (("--inet-aton", "127.1"), "2130706433"),
    ],
)
def test_quiet_forms(runner: CliRunner, args: tuple[str, ...], bare: str) -> None:
    result = invoke(runner, "-q", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == bare + "\n"


def test_quiet_and_json_do_not_mix(runner: CliRunner) -> None:
    assert invoke(runner, "-q", "--json", "1.2.3.4").exit_code == 2


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        (
            "192.168.1.0/24",
            {
                "network": "192.168.1.0/24",
                "netmask": "255.255.255.0",
                "hostmask": "0.0.0.255",
                "broadcast": "192.168.1.255",
                "first_host": "192.168.1.1",
                "last_host": "192.168.1.254",
                "addresses": 256,
                "hosts": 254,
                "host_bits_set": False,
            },
        ),
        ("192.168.1.77/24", {"network": "192.168.1.0/24", "host_bits_set": True}),
        ("10.0.0.0/255.0.0.0", {"network": "10.0.0.0/8", "prefix_length": 8}),
        ("10.0.0.0/31", {"first_host": "10.0.0.0", "last_host": "10.0.0.1", "hosts": 2}),
        ("10.0.0.5/32", {"first_host": "10.0.0.5", "last_host": "10.0.0.5", "hosts": 1}),
        (
            "2001:db8::/64",
            {"broadcast": None, "first_host": "2001:db8::1", "hosts": 2**64 - 1},
        ),
    ],
)
def test_cidr(runner: CliRunner, value: str, fields: dict[str, object]) -> None:
    result = invoke(runner, "--json", value)
    assert result.exit_code == 0, result.output
    (obj,) = objects(result.stdout)
    assert obj["event"] == "network"
    for key, expected in fields.items():
        assert obj[key] == expected, key
    human = invoke(runner, value).stdout
    assert str(obj["network"]) in human and "hosts" in human


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("10.0.0.0/33", "more than 32"),
        ("10.0.0.0/024", "without leading zeros"),
        ("10.0.0.0/", "nothing after '/'"),
        ("10.0.0.0/255.0.255.0", "not a netmask"),
        ("10.1/8", "has 2 parts"),
        ("167772160/8", "as text"),
        ("::1/129", "more than 128"),
    ],
)
def test_cidr_errors(runner: CliRunner, value: str, why: str) -> None:
    result = invoke(runner, value)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and why in errors[0], result.output


def run_on_pty(columns: int, *args: str) -> str:
    """netkit with stdout on a pseudo-terminal *columns* wide (no COLUMNS variable)."""
    e = env(TERM="xterm-256color", NO_COLOR="1")
    e.pop("COLUMNS", None)
    e.pop("LINES", None)
    out = read_pty([NETKIT, *args], e, columns=columns)
    return out.decode().replace("\r\n", "\n")


EXPLAINED = {
    "192.168.1.1": "Network byte order is big-endian",
    "::ffff:192.168.1.1": "This IPv6 address names the IPv4 address",
    "192.168.1.7/24": "names an address inside the network",
}


@pytest.mark.parametrize("columns", [80, 132])
@pytest.mark.parametrize("value", sorted(EXPLAINED))
def test_explanations_wrap_at_word_boundaries(columns: int, value: str) -> None:
    out = run_on_pty(columns, "pack-ip", value)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if EXPLAINED[value] in line)
    prose = lines[start:]
    assert prose, out
    for line in prose:
        assert len(line) < columns, (columns, line)
        assert line.startswith("  ") and not line.startswith("   "), line
        assert line == line.rstrip()
    # every word whole: the wrapped text is the one-line text split at spaces
    one_line = run_on_pty(400, "pack-ip", value).splitlines()
    text = " ".join(
        line.strip()
        for line in one_line[next(i for i, x in enumerate(one_line) if EXPLAINED[value] in x) :]
    )
    assert " ".join(line.strip() for line in prose) == text
    if columns == 80:
        assert len(prose) >= 2  # it did wrap


@pytest.mark.parametrize("columns", [80, 132])
@pytest.mark.parametrize("value", ["10.0.0.1", "::ffff:192.168.1.1", "192.168.1.7/24", "8080"])
def test_rows_wrap_their_notes_under_themselves(columns: int, value: str) -> None:
    """The label/value/note rows fit the terminal: a long note wraps between words, under
    its own column; the words are those of a 400-column run."""
    out = run_on_pty(columns, "pack-ip", value)
    for line in out.splitlines():
        assert len(line) <= columns, (columns, line)
    assert out.split() == run_on_pty(400, "pack-ip", value).split()

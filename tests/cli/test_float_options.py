"""Every float option takes finite, bounded decimal numbers only (issue 14 item 16)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from netkit.cli import COMMANDS, cli
from netkit.cli._common import BoundedFloat


def _commands() -> list[tuple[list[str], click.Command]]:
    out: list[tuple[list[str], click.Command]] = []
    ctx = click.Context(cli)

    def walk(command: click.Command, path: list[str]) -> None:
        out.append((path, command))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])

    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        walk(command, [name])
    return out


FLOAT_OPTIONS = [
    (path, param.opts[-1])
    for path, command in _commands()
    for param in command.params
    if isinstance(param, click.Option) and isinstance(param.type, BoundedFloat)
]


def test_every_float_option_uses_the_shared_type() -> None:
    plain = [
        (path, param.opts[-1])
        for path, command in _commands()
        for param in command.params
        if isinstance(param.type, click.types.FloatParamType)
    ]
    assert plain == []
    names = {opt for _path, opt in FLOAT_OPTIONS}
    assert {"--timeout", "--rate", "--grace", "--idle-timeout", "--seconds"} <= names


BAD = ["nan", "NaN", "inf", "-inf", "infinity", "1e308", "-1", " 1", "1_0", "0x1p3", "١", ""]


@pytest.mark.parametrize(("path", "option"), FLOAT_OPTIONS, ids=lambda x: str(x))
def test_float_option_refuses_non_finite_and_huge(
    runner: object, path: list[str], option: str
) -> None:
    from click.testing import CliRunner

    assert isinstance(runner, CliRunner)
    for value in BAD:
        result = runner.invoke(cli, [*path, option, value])
        assert result.exit_code == 2, (path, option, value, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output
        assert option in errors[0]
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bounded_float_accepts_plain_numbers() -> None:
    t = BoundedFloat(0.0, 10.0, low_open=True, name="seconds")
    assert t.convert("2", None, None) == 2.0
    assert t.convert("0.5", None, None) == 0.5
    assert t.convert(".5", None, None) == 0.5
    assert t.convert("1e1", None, None) == 10.0
    assert t.convert(3, None, None) == 3.0
    with pytest.raises(click.BadParameter):
        t.convert("0", None, None)
    zero = BoundedFloat(0.0, 10.0, low_open=False, name="seconds")
    assert zero.convert("0", None, None) == 0.0


def test_rate_nan_through_the_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netkit", "udp-echo", "serve", "--port", "0", "--rate", "nan"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("Error:") == 1 and "Traceback" not in proc.stderr

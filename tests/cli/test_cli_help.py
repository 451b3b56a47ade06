"""Every command and subcommand answers --help and -h; the group lists them all."""

from __future__ import annotations

import os
import shutil

import click
import pytest
from click.testing import CliRunner

from netkit import __version__
from netkit.cli import ALIASES, COMMANDS, cli


def all_paths() -> list[list[str]]:
    paths: list[list[str]] = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        paths.append([name])
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                paths.append([name, sub])
    paths.extend([alias] for alias in ALIASES)
    return paths


@pytest.mark.parametrize("path", all_paths(), ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(runner: CliRunner, path: list[str], flag: str) -> None:
    result = runner.invoke(cli, prog_name="netkit", args=[*path, flag])
    assert result.exit_code == 0, result.output
    assert "Usage: netkit " in result.output
    command = cli.get_command(click.Context(cli), path[0])
    if len(path) > 1 or not isinstance(command, click.Group):
        assert "--json" in result.output


def test_group_help_lists_commands_and_aliases(runner: CliRunner) -> None:
    result = runner.invoke(cli, prog_name="netkit", args=["-h"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    for alias in ALIASES:
        assert alias in result.output


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, prog_name="netkit", args=["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, prog_name="netkit", args=["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_unknown_option_is_a_usage_error(runner: CliRunner, name: str) -> None:
    result = runner.invoke(cli, prog_name="netkit", args=[name, "--no-such-option"])
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path", [[], *all_paths()], ids=lambda p: " ".join(p) or "netkit")
@pytest.mark.parametrize("columns", [80, 132])
def test_help_fits_the_terminal_and_cuts_no_word(
    runner: CliRunner, path: list[str], columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 5: every --help fits 80 and 132 columns and wraps only between
    words (never after the hyphen of udp-echo): its words are those of a help 400
    columns wide."""
    # the terminal's size, as click reads it for a real one
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((columns, 24)))
    result = runner.invoke(cli, prog_name="netkit", args=[*path, "--help"])
    wide = runner.invoke(cli, prog_name="netkit", args=[*path, "--help"], terminal_width=400)
    assert result.exit_code == 0 and wide.exit_code == 0
    for line in result.output.splitlines():
        assert len(line) <= columns, (columns, line)
    assert result.output.split() == wide.output.split()

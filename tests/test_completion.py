"""Shell completion: checked-in scripts, what completes, and a light import path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from netkit.cli import COMMANDS, cli
from netkit.cli.completion import script
from tests.helpers import NETKIT, env

ROOT = Path(__file__).resolve().parent.parent
FILES = {"bash": "netkit.bash", "zsh": "_netkit", "fish": "netkit.fish"}


@pytest.mark.parametrize("shell", sorted(FILES))
def test_checked_in_scripts_are_current(shell: str) -> None:
    checked_in = (ROOT / "completions" / FILES[shell]).read_text()
    assert checked_in == script(shell), (
        f"completions/{FILES[shell]} is stale: run scripts/gen-completions"
    )


@pytest.mark.parametrize("shell", sorted(FILES))
def test_print_command_matches(runner: CliRunner, shell: str) -> None:
    result = runner.invoke(cli, ["completion", shell], prog_name="netkit")
    assert result.exit_code == 0
    assert result.output == script(shell)
    obj = json.loads(runner.invoke(cli, ["completion", shell, "--json"]).output)
    assert obj == {"event": "completion", "shell": shell, "script": script(shell)}


def complete(words: str, extra_env: dict[str, str] | None = None) -> list[str]:
    """Ask the real netkit for bash completions of *words* (the last word is completed)."""
    parts = words.split(" ")
    e = env(_NETKIT_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    e.update(extra_env or {})
    proc = subprocess.run([NETKIT], env=e, capture_output=True, timeout=20, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_completes_subcommands() -> None:
    assert complete("netkit res") == ["resolve"]
    assert complete("netkit tcp") == ["tcp-time"]
    assert complete("netkit creosote-s") == ["creosote-spew"]
    assert sorted(complete("netkit upper-server ")) == ["chat", "send", "serve"]
    assert complete("netkit pack") == ["pack-ip"]
    assert set(COMMANDS) <= set(complete("netkit "))


def test_completes_choice_values_of_server_options() -> None:
    assert complete("netkit upper-server serve --mode ") == ["sync", "thread", "fork", "async"]
    assert complete("netkit tcp-time get --protocol ") == ["daytime", "time", "sntp"]


def test_completes_options_and_choices() -> None:
    assert "--inet-aton" in complete("netkit pack-ip --i")
    assert complete("netkit resolve --type ") == [
        "a",
        "aaaa",
        "ptr",
        "cname",
        "mx",
        "ns",
        "txt",
        "soa",
    ]
    assert sorted(complete("netkit completion ")) == ["bash", "fish", "install", "zsh"]


def test_completion_and_help_do_not_import_rich_or_services() -> None:
    code = (
        "import sys, runpy\n"
        "try:\n"
        "    runpy.run_module('netkit', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m == 'rich' or m.startswith(('rich.', "
        "'netkit.services', 'netkit.render', 'dns')))\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    cases = [
        {"_NETKIT_COMPLETE": "bash_complete", "COMP_WORDS": "netkit res", "COMP_CWORD": "1"},
        {"_NETKIT_COMPLETE": "bash_complete", "COMP_WORDS": "netkit resolve --", "COMP_CWORD": "2"},
        {"_NETKIT_COMPLETE": "zsh_complete", "COMP_WORDS": "netkit pack-ip -", "COMP_CWORD": "2"},
        {},
    ]
    for extra in cases:
        argv = [] if extra else ["--help"]
        proc = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.argv = ['netkit', *{argv!r}]\n" + code],
            env=env(**extra),
            capture_output=True,
            text=True,
            timeout=20,
        )
        heavy = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
        assert heavy == ["HEAVY="], (extra, proc.stderr)
        assert proc.stdout.strip(), extra


@pytest.mark.parametrize(
    ("shell", "where"),
    [
        ("bash", ".local/share/bash-completion/completions/netkit"),
        ("fish", ".config/fish/completions/netkit.fish"),
        ("zsh", ".zfunc/_netkit"),
    ],
)
def test_install_writes_where_the_shell_looks(tmp_path: Path, shell: str, where: str) -> None:
    e = env(HOME=str(tmp_path))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "ZDOTDIR"):
        e.pop(var, None)
    proc = subprocess.run(
        [NETKIT, "completion", "install", shell, "--json"],
        env=e,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "event": "installed",
        "shell": shell,
        "path": str(tmp_path / where),
    }
    assert (tmp_path / where).read_text() == script(shell)


def test_install_detects_the_shell_or_asks(tmp_path: Path) -> None:
    e = env(HOME=str(tmp_path), SHELL="/usr/bin/fish")
    e.pop("XDG_CONFIG_HOME", None)
    ok = subprocess.run([NETKIT, "completion", "install"], env=e, capture_output=True, timeout=20)
    assert ok.returncode == 0
    assert (tmp_path / ".config/fish/completions/netkit.fish").exists()
    e["SHELL"] = "/bin/tcsh"
    bad = subprocess.run([NETKIT, "completion", "install"], env=e, capture_output=True, timeout=20)
    assert bad.returncode == 2
    assert b"cannot tell which shell" in bad.stderr


def test_install_refuses_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "link"
    os.symlink(victim, link)
    proc = subprocess.run(
        [NETKIT, "completion", "install", "bash", "--path", str(link)],
        env=env(),
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 1
    assert b"symbolic link" in proc.stderr
    assert victim.read_text() == "keep me"

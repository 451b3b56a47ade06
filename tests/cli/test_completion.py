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

ROOT = Path(__file__).resolve().parents[2]
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


def _install(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETKIT, "completion", "install", "bash", "--path", path],
        env=env(),
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_install_does_not_write_through_a_planted_tmp_symlink(tmp_path: Path) -> None:
    """The old code wrote PATH.tmp, following a symlink planted there (issue 14 item 15)."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    target = tmp_path / "netkit"
    for name in ("netkit.tmp", ".netkit.tmp"):
        os.symlink(victim, tmp_path / name)
    proc = _install(str(target))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "keep me"
    assert target.read_text() == script("bash")
    assert not target.is_symlink()
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    # nothing but the target and the planted links is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".netkit.tmp",
        "netkit",
        "netkit.tmp",
        "victim",
    ]


def test_install_replaces_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "netkit"
    target.write_text("old")
    proc = _install(str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text() == script("bash")


def test_install_refuses_fifos_devices_and_directories(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((str(fifo), "FIFO"), ("/dev/full", "device"), ("/dev/null", "device")):
        proc = _install(path)
        assert proc.returncode == 1, (path, proc.stderr)
        assert proc.stderr.count("Error:") == 1 and kind in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert fifo.exists() and not fifo.is_file()
    assert Path("/dev/full").is_char_device()
    proc = _install(str(tmp_path))
    assert proc.returncode == 2 and "directory" in proc.stderr


@pytest.mark.parametrize("path", ["", " "])
def test_install_refuses_an_empty_path(path: str) -> None:
    proc = _install(path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--path': an empty path; give a file name"
    )


def test_descriptions_are_the_real_short_help() -> None:
    """zsh and fish show a description per command: the whole summary
    (it used to be click's cut at the first period: "creosote -- Mr.")."""
    e = env(_NETKIT_COMPLETE="zsh_complete", COMP_WORDS="netkit ", COMP_CWORD="1")
    proc = subprocess.run([NETKIT], env=e, capture_output=True, timeout=20, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    described = dict(zip(lines[1::3], lines[2::3], strict=True))
    for name, (_target, summary) in COMMANDS.items():
        assert described[name] == summary
    e.update(COMP_WORDS="netkit udp-echo ", COMP_CWORD="2")
    proc = subprocess.run([NETKIT], env=e, capture_output=True, timeout=20, text=True)
    lines = proc.stdout.splitlines()
    described = dict(zip(lines[1::3], lines[2::3], strict=True))
    assert described["send"] == "Send each MESSAGE as one datagram and print each reply on stdout."


@pytest.mark.parametrize(
    "words", ["netkit creosote listen --logfile ", "netkit completion install --path "]
)
def test_path_options_complete_file_names(words: str) -> None:
    parts = words.split(" ")
    e = env(_NETKIT_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    proc = subprocess.run([NETKIT], env=e, capture_output=True, timeout=20, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["file,"]

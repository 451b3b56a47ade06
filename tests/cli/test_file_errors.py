"""A file error names the file and its real cause (issue 14 item 18): a log
file in a directory one cannot write is not "ports below 1024 need root"."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netkit.net import describe_error
from tests.helpers import NETKIT, env

NOBODY = 65534


def run_unprivileged(*args: str) -> str:
    """Run netkit (as nobody when we are root: root may write anywhere);
    expect exit 1 and return its stderr."""
    cmd = [NETKIT, *args]
    if os.geteuid() == 0:
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    return proc.stderr


def test_describe_error_names_the_file() -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "/var/log/x.log")
    line = describe_error(exc, "cannot open log file")
    assert "/var/log/x.log" in line
    assert "port" not in line and "root" not in line
    assert line.startswith("cannot open log file: /var/log/x.log: permission denied")
    # the action already names the file: not twice
    line = describe_error(exc, "cannot open log file /var/log/x.log")
    assert line.count("/var/log/x.log") == 1
    for code, words in (
        (errno.ENOENT, "no such file"),
        (errno.EROFS, "read-only file system"),
        (errno.EISDIR, "is a directory"),
    ):
        line = describe_error(OSError(code, os.strerror(code), "/x/y"), "open")
        assert line == f"open: /x/y: {describe_error(OSError(code, 'z', '/x/y')).split(': ', 1)[1]}"
        assert words in line
    # a socket error (no file name) keeps its socket hint
    bind = PermissionError(errno.EACCES, "Permission denied")
    assert "ports below 1024" in describe_error(bind, "bind 127.0.0.1:80")


@pytest.fixture
def locked() -> Iterator[Path]:
    """A directory nobody may enter but not create files in (pytest's tmp_path
    is not enterable by nobody at all)."""
    top = Path(tempfile.mkdtemp(prefix="netkit-locked-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def test_a_closed_ancestor_is_named(locked: Path) -> None:
    inner = locked / "private" / "logs"
    inner.mkdir(parents=True)
    (locked / "private").chmod(0o700)
    stderr = run_unprivileged("creosote", "listen", "--port", "0", "--logfile", str(inner / "x"))
    assert f"may not enter the directory {locked / 'private'}" in stderr


def test_logfile_in_a_directory_one_cannot_write(locked: Path) -> None:
    log = locked / "debug.log"
    (line,) = run_unprivileged(
        "creosote", "listen", "--port", "0", "--logfile", str(log)
    ).splitlines()
    assert line.startswith("Error: ") and str(log) in line
    assert f"may not create files in {log.parent}" in line
    assert "port" not in line.split(str(log), 1)[1] and "root" not in line


def test_completion_install_in_a_directory_one_cannot_write(locked: Path) -> None:
    target = locked / "netkit"
    (line,) = run_unprivileged("completion", "install", "bash", "--path", str(target)).splitlines()
    assert str(target.parent) in line and "may not create files" in line
    assert "port" not in line

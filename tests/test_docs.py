"""docs/cli.md and docs/man/ are generated from the code and must not drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_reference_docs_match_the_code() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-docs"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr


def test_every_command_is_documented() -> None:
    from netkit.cli import COMMANDS

    text = (ROOT / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## netkit {name}\n" in text
        assert (ROOT / "docs" / "man" / f"netkit-{name}.1").exists()


MAN = sorted((ROOT / "docs" / "man").glob("*.1"))


def test_man_pages_have_the_usual_sections() -> None:
    assert len(MAN) >= 20
    for page in MAN:
        text = page.read_text()
        for section in ("NAME", "SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "SEE ALSO"):
            assert f".SH {section}\n" in text, (page.name, section)
        assert "NO_COLOR" in text and "FORCE_COLOR" in text
        name_line = text.split(".SH NAME\n", 1)[1].split("\n", 1)[0]
        # the real one-line summary: not click's "Mr." nor a 45-column cut
        assert not name_line.endswith(("Mr.", "...")), (page.name, name_line)
        assert "\b" not in text  # click's no-rewrap marker never reaches roff
    assert ".SH EXAMPLES\n" in (ROOT / "docs" / "man" / "netkit-pack-ip.1").read_text()
    creosote = (ROOT / "docs" / "man" / "netkit-creosote.1").read_text()
    assert "netkit\\-creosote \\- Mr.\\& Creosote: UDP remote\\-debug" in creosote


def test_man_pages_render_within_80_columns() -> None:
    import os

    for page in MAN:
        proc = subprocess.run(
            ["man", "-l", str(page)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"},
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", (page.name, proc.stderr)
        lines = proc.stdout.splitlines()
        title = page.stem.upper() + "(1)"
        # the .TH header: title on both sides, nothing cut or run together
        assert lines[0].startswith(title) and lines[0].endswith(title), lines[0]
        assert "netkit manual" in lines[0]
        assert all(len(line) <= 80 for line in lines), page.name


def test_changelog_has_unreleased_on_top_and_the_release_with_its_date() -> None:
    import re

    from netkit import __version__

    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "[Unreleased]"
    assert f"[{__version__}] - 2026-11-25" in headings
    for heading in headings[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading

"""What the wheel and the sdist carry: the licence, man pages, completions, docs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _wheel(dist: Path) -> zipfile.ZipFile:
    (wheel,) = dist.glob("*.whl")
    return zipfile.ZipFile(wheel)


def test_wheel_carries_licence_man_pages_and_completions(dist: Path) -> None:
    names = set(_wheel(dist).namelist())
    data = "netkit_cli-0.1.0.data/data/share/"
    assert "netkit_cli-0.1.0.dist-info/licenses/LICENSE" in names
    for page in (ROOT / "docs" / "man").glob("*.1"):
        assert f"{data}man/man1/{page.name}" in names
    assert f"{data}bash-completion/completions/netkit" in names
    assert f"{data}zsh/site-functions/_netkit" in names
    assert f"{data}fish/vendor_completions.d/netkit.fish" in names
    assert "netkit/py.typed" in names


def test_wheel_metadata(dist: Path) -> None:
    wheel = _wheel(dist)
    meta = Parser().parsestr(wheel.read("netkit_cli-0.1.0.dist-info/METADATA").decode())
    classifiers = set(meta.get_all("Classifier") or [])
    for c in (
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Typing :: Typed",
        "Topic :: Education",
        "Topic :: System :: Networking",
        "Topic :: System :: Logging",
    ):
        assert c in classifiers
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("Project-URL")
    requires = meta.get_all("Requires-Dist") or []
    assert "click>=8.1" in requires and "rich>=13" in requires and "dnspython>=2.3" in requires
    # the development tools are a dependency group, not a published extra
    assert "test" not in (meta.get_all("Provides-Extra") or [])
    assert not [r for r in requires if r.startswith(("pytest", "ruff", "mypy"))]


def test_sdist_carries_licence_docs_and_tests(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("LICENSE", "docs/cli.md", "docs/man/netkit.1", "completions/_netkit"):
        assert name in names
    assert "tests/test_packaging.py" in names and "scripts/gen-docs" in names

"""The dependency floors in pyproject.toml are the versions installed here
when scripts/test runs its minimum-versions pass (and at least them otherwise)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _floors(*, unconditional: bool = False) -> dict[str, tuple[int, ...]]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        if unconditional and ";" in dep:
            continue  # an environment marker: scripts/test's floors venv leaves it out
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", dep.split(";")[0].strip())
        assert m, f"every dependency has a >= floor: {dep}"
        out[m.group(1)] = tuple(int(x) for x in m.group(2).split("."))
    return out


def _installed(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"[0-9]+", version(name))[:3])


def test_floors_are_what_distributions_ship() -> None:
    # Debian 12 ships click 8.1, rich 13, dnspython 2.3; uvloop (CPython on
    # Linux and macOS only) is the event loop, not a distribution's library
    assert _floors() == {"click": (8, 1), "rich": (13,), "dnspython": (2, 3), "uvloop": (0, 19)}


def test_installed_versions_meet_the_floors() -> None:
    floors = _floors(unconditional=".venv-min" in sys.prefix)
    for name, floor in floors.items():
        assert _installed(name) >= floor, name
    if ".venv-min" in sys.prefix:  # scripts/test's minimum-versions venv
        for name, floor in _floors(unconditional=True).items():
            got = _installed(name)
            assert got[: len(floor)] == floor, (name, got)

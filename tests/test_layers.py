"""DESIGN.md layers: rich only in netkit/render, click only in netkit/cli and
netkit/render, no sockets or event loops in netkit/protocols."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "netkit"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_module_respects_its_layer() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 10
    crossings = []
    for path in files:
        where = layer(path)
        got = imports(path)
        if "rich" in got and where != "render":
            crossings.append(f"{path}: imports rich outside netkit/render")
        if "click" in got and where not in ("cli", "render"):
            crossings.append(f"{path}: imports click outside netkit/cli and netkit/render")
        if where == "protocols" and got & {"socket", "selectors", "asyncio", "select", "ssl"}:
            crossings.append(f"{path}: protocol code does I/O ({sorted(got)})")
    assert crossings == []


def test_the_checker_sees_a_crossing(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import socket\nfrom rich.text import Text\nimport click.testing\n")
    assert {"socket", "rich", "click"} <= imports(bad)

"""Events are typed (mypy sees every field) and each family has its own renderer."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import netkit.events
from netkit.events import Event, Summary
from netkit.events.pack_ip import InvalidValue
from netkit.events.resolve import Unresolved
from netkit.render.human import HANDLERS as BASE_HANDLERS
from netkit.render.human import Handlers, HumanRenderer, handler_for

ROOT = Path(__file__).resolve().parents[2]
# emitted with --json only (a human sees an Error: line instead)
JSON_ONLY = {InvalidValue, Unresolved}


def families() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(netkit.events.__path__)]
    return {name: importlib.import_module(f"netkit.events.{name}") for name in names}


def events_of(module: ModuleType) -> list[type[Event]]:
    return [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Event) and v.__module__ == module.__name__
    ]


def test_every_event_is_a_frozen_dataclass_of_its_own_family_module() -> None:
    found = families()
    assert {"base", "udp_echo", "creosote", "tcp_time", "upper_server", "demo"} <= set(found)
    kinds = [kind for module in found.values() for kind in events_of(module)]
    assert len(kinds) >= 27
    for kind in kinds:
        assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind  # type: ignore[attr-defined]
    # no lazy module attribute: what mypy sees is what runs
    assert not any(hasattr(module, "__getattr__") for module in found.values())
    assert not hasattr(netkit.events, "__getattr__")


def test_mypy_rejects_a_wrong_field_name_or_type(tmp_path: Path) -> None:
    good = tmp_path / "good_events.py"
    good.write_text(
        textwrap.dedent(
            """\
            from netkit.events.udp_echo import Datagram
            from netkit.events.upper_server import LineEvent

            Datagram(peer="127.0.0.1:1", size=1, data=b"x")
            LineEvent(peer="127.0.0.1:1", data=b"x", length=1)
            """
        )
    )
    bad = tmp_path / "bad_events.py"
    bad.write_text(
        textwrap.dedent(
            """\
            from netkit.events.udp_echo import Datagram
            from netkit.events.upper_server import LineEvent

            Datagram(peer=1, nonsense=2)
            LineEvent(peer="127.0.0.1:1", data="not bytes", length=1)
            """
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),  # a cache of its own: errors name this run's files
            str(good),
            str(bad),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert errors and all(line.startswith(str(bad)) for line in errors), proc.stdout
    text = proc.stdout
    assert 'Unexpected keyword argument "nonsense" for "Datagram"' in text
    assert 'Argument "peer" to "Datagram" has incompatible type "int"' in text
    assert 'Argument "data" to "LineEvent" has incompatible type "str"' in text


def test_each_event_is_shown_by_the_renderer_of_its_family() -> None:
    for family, module in families().items():
        if family == "completion":  # JSON only: the human output is the script itself
            continue
        expected = "netkit.render.human" if family == "base" else f"netkit.render.{family}"
        for kind in events_of(module):
            if kind in JSON_ONLY:
                continue
            assert handler_for(kind).__module__ == expected, kind
    for family in families():
        if family in ("base", "completion"):
            continue
        handlers: Handlers = importlib.import_module(f"netkit.render.{family}").HANDLERS
        assert {k.__module__ for k in handlers} == {f"netkit.events.{family}"}


def test_an_event_type_has_one_handler() -> None:
    def again(r: HumanRenderer, ev: Summary) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="Summary has a human handler already"):
        BASE_HANDLERS.on(Summary)(again)


SUMMARY_SCRIPT = """
import io, sys
from rich.console import Console
for name in sys.argv[1:]:
    __import__(name)
from netkit.events import Summary
from netkit.render.human import HumanRenderer
r = HumanRenderer(no_color=True)
err = io.StringIO()
r.err = Console(file=err, width=200, markup=False, highlight=False)
r(Summary({"connections": 2}, "stopped by SIGINT"))
sys.stdout.write(err.getvalue())
"""


def test_summary_output_does_not_depend_on_which_renderers_were_imported() -> None:
    outputs = []
    for first in ([], ["netkit.render.upper_server", "netkit.render.tcp_time"]):
        proc = subprocess.run(
            [sys.executable, "-c", SUMMARY_SCRIPT, *first],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        outputs.append(proc.stdout)
    assert outputs == ["stopped by SIGINT: connections 2\n"] * 2


IMPORTED = """
import io, runpy, sys, contextlib
sys.argv = ["netkit", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("netkit", run_name="__main__")
    except SystemExit:
        pass
print(" ".join(sorted(m for m in sys.modules if m.startswith(("netkit.events", "netkit.render")))))
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], ""),
        (
            ["pack-ip", "10.0.0.1", "--json"],
            "netkit.events netkit.events.base netkit.events.pack_ip",
        ),
    ],
)
def test_a_command_loads_only_its_own_event_family(argv: list[str], expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    loaded = proc.stdout.split()
    assert " ".join(m for m in loaded if m.startswith("netkit.events")) == expected

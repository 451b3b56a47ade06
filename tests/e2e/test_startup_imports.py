"""Clients apart from servers: what each one-shot command imports of netkit.

Each command runs for real (a subprocess, against a server on port 0 in
this process) and reports the netkit modules it loaded; the set must stay
within the list below.  No client loads server code (``netkit.services.*``
but the ``--mode`` table and resolve's own lookups) or the ctypes batch
module, and none loads rich: their human output is written by
netkit.render.lite (tests/e2e/test_lite_output.py holds it to rich's bytes).
A module added to a client's path is added here on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netkit.events import Recorder
from netkit.services.core import Service
from netkit.services.creosote import CreosoteListener
from netkit.services.tcp_time import TimeServer
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.helpers import env, services_running

#: what every command loads; each adds its own event family and its renderer
COMMON = {
    "netkit",
    "netkit.cli",
    "netkit.cli._common",
    "netkit.events",
    "netkit.events.base",
    "netkit.protocols",
    "netkit.protocols.text",
    "netkit.render",
}
#: what each kind of output loads: lite's writer, or the JSON one (never rich)
OUTPUT = {"human": {"netkit.render.lite"}, "json": {"netkit.render.jsonl"}}


def family(name: str) -> set[str]:
    return {f"netkit.events.{name}", f"netkit.render.{name}"}


ALLOWED = {
    "udp-echo send": COMMON
    | family("udp_echo")
    | {"netkit.net", "netkit.cli.udp_echo", "netkit.clients", "netkit.clients.udp_echo"}
    | {"netkit.protocols.echo"},
    "tcp-time get": COMMON
    | family("tcp_time")
    | {"netkit.net", "netkit.cli.tcp_time", "netkit.clients", "netkit.clients.tcp_time"}
    | {"netkit.protocols.timeproto"},
    "upper-server send": COMMON
    | family("upper_client")
    | {"netkit.net", "netkit.cli.upper_server", "netkit.clients", "netkit.clients.upper"}
    | {"netkit.protocols.lines", "netkit.protocols.upper"}
    | {"netkit.services", "netkit.services.modes"},
    "creosote spew": COMMON
    | family("creosote_spew")
    | {"netkit.net", "netkit.cli.creosote", "netkit.clients", "netkit.clients.creosote"}
    | {"netkit.protocols.creosote_chunks"},
    "resolve localhost": COMMON
    | family("resolve")
    | {"netkit.net", "netkit.cli.resolve", "netkit.services", "netkit.services.resolve"}
    | {"netkit.protocols.dnsstatus"},
    "pack-ip 10.0.0.1": COMMON
    | family("pack_ip")
    | {"netkit.cli.pack_ip", "netkit.protocols.ipaddr"},
}
#: server code a client must never load (netkit.services.modes is only the --mode table)
NEVER = {
    "ctypes",
    "rich",
    "netkit.render.human",
    "netkit.services._mmsg",
    "netkit.services.core",
    "netkit.services.loops",
    "netkit.services.udp_echo",
    "netkit.services.tcp_time",
    "netkit.services.upper",
    "netkit.services.creosote",
    "netkit.services.modes.base",
    "netkit.demo",
}
#: no command loads another command's events
OTHER_FAMILIES = {f"netkit.events.{n}" for n in ("udp_echo", "tcp_time", "upper_server")} | {
    f"netkit.events.{n}"
    for n in ("creosote", "creosote_spew", "upper_client", "resolve", "pack_ip", "demo", "anatomy")
}

REPORT = """
import json, sys
sys.argv = ["netkit", *sys.argv[2:]]
from netkit.cli import main
try:
    main()
except SystemExit:
    pass
finally:
    with open({path!r}, "w") as f:
        top = ("netkit", "ctypes", "rich", "ipaddress", "queue")
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] in top), f)
"""


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    servers: dict[str, Service] = {
        "udp-echo": UdpEchoServer(Recorder(), port=0),
        "tcp-time": TimeServer(Recorder(), port=0),
        "upper-server": UpperServer(Recorder(), port=0),
        "creosote": CreosoteListener(Recorder(), port=0),
    }
    with services_running(servers) as found:
        yield found


def loaded(tmp_path: Path, args: list[str]) -> set[str]:
    out = tmp_path / "modules.json"
    code = REPORT.format(path=str(out))
    proc = subprocess.run(
        [sys.executable, "-c", code, "-", *args], env=env(), capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr.decode()
    modules: list[str] = json.loads(out.read_text())
    return set(modules)


@pytest.mark.parametrize("json_output", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("command", list(ALLOWED))
def test_one_shot_command_imports_only_its_list(
    command: str, json_output: bool, ports: dict[str, int], tmp_path: Path
) -> None:
    args = command.split()
    if args[0] in ports:
        args += ["--port", str(ports[args[0]])]
    if command in ("udp-echo send", "upper-server send", "creosote spew"):
        args.append("hi")
    if json_output:
        args.append("--json")
    got = loaded(tmp_path, args)
    # two standard-library modules a client does without (inet_pton decides
    # what an address is; a bounded lookup waits on an Event); pack-ip's
    # answers are ipaddress's
    stdlib = got & {"ipaddress", "queue"}
    assert stdlib == ({"ipaddress"} if args[0] == "pack-ip" else set()), sorted(stdlib)
    got -= stdlib
    assert not {m.split(".")[0] for m in got} & {"rich"}, sorted(got)
    assert not got & NEVER, sorted(got & NEVER)
    allowed = ALLOWED[command] | OUTPUT["json" if json_output else "human"]
    assert got <= allowed, sorted(got - allowed)
    assert got & OTHER_FAMILIES == ALLOWED[command] & OTHER_FAMILIES, sorted(got & OTHER_FAMILIES)


def test_client_modules_import_no_server_code() -> None:
    """Statically too: nothing in netkit/clients imports netkit.services or ctypes."""
    import ast

    root = Path(__file__).resolve().parents[2] / "netkit" / "clients"
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [
                f"{path.name}: {n}" for n in names if n.startswith(("netkit.services", "ctypes"))
            ]
    assert found == []

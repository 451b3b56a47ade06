"""resolve: per-type status, a closed DNS port, CNAME targets, batch queries,
and --timeout bounding the system resolver (issue 14 items 1, 12, 20)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from tests.helpers import NETKIT, env, peer
from tests.interop.test_resolve import start_dnsmasq

HOSTS = "10.9.8.7 only-a.example\n127.0.0.42 example.test\n::42 example.test\n"


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["resolve", *args], prog_name="netkit")


@pytest.fixture(scope="module")
def refusing_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dnsmasq with no upstream and no --local: it answers A from its hosts
    file and REFUSES the AAAA query for the same name."""
    tmp = tmp_path_factory.mktemp("dnsmasq-refusing")
    hosts = tmp / "hosts"
    hosts.write_text(HOSTS)
    proc, server = start_dnsmasq(peer("dnsmasq"), tmp, hosts, local=False, probe="only-a.example")
    try:
        yield server
    finally:
        proc.terminate()
        proc.communicate(timeout=5)


def test_a_good_answer_is_kept_when_aaaa_is_refused(runner: CliRunner, refusing_dns: str) -> None:
    result = invoke(runner, "--server", refusing_dns, "--json", "only-a.example")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["addresses"] == ["10.9.8.7"]
    assert obj["status"] == {"A": "answer", "AAAA": "refused"}
    human = invoke(runner, "--server", refusing_dns, "only-a.example")
    assert human.exit_code == 0
    assert "10.9.8.7" in human.stdout and "AAAA: REFUSED" in human.stdout


def test_nothing_found_names_each_status(runner: CliRunner, refusing_dns: str) -> None:
    result = invoke(runner, "--server", refusing_dns, "not-here.example")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: 'not-here.example': nothing found at DNS server")
    assert "A: REFUSED, AAAA: REFUSED" in line
    # --json: the per-type status of a failure too, on stdout, as one object
    proc = subprocess.run(
        [NETKIT, "resolve", "--server", refusing_dns, "--json", "not-here.example"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    obj = json.loads(proc.stdout)
    assert obj["event"] == "unresolved" and obj["status"] == {"A": "refused", "AAAA": "refused"}
    assert proc.stderr.count("Error:") == 1


def test_nodata_and_nxdomain_statuses(runner: CliRunner, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.43 v4only.test\n")
    proc, server = start_dnsmasq(peer("dnsmasq"), tmp_path, hosts, probe="v4only.test")
    try:
        obj = json.loads(invoke(runner, "--server", server, "--json", "v4only.test").stdout)
        assert obj["status"] == {"A": "answer", "AAAA": "nodata"}
        nx = invoke(runner, "--server", server, "--json", "nosuch.test")
        assert nx.exit_code == 1 and "NXDOMAIN" in nx.output
    finally:
        proc.terminate()
        proc.communicate(timeout=5)


def test_a_closed_dns_port_is_reported_at_once(runner: CliRunner) -> None:
    """dig reports the ICMP port unreachable at once; so must resolve, not
    wait out --timeout (here a minute: the test would take that long)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = invoke(runner, "--server", f"127.0.0.1:{port}", "--timeout", "60", "x.example")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "port is unreachable" in line and f"127.0.0.1:{port}" in line
    assert elapsed < 30, elapsed


def test_cname_target_is_shown_once(runner: CliRunner, refusing_dns: str) -> None:
    """--type cname used to hide the target and list each record twice."""
    result = invoke(
        runner, "--server", refusing_dns, "--type", "cname", "--json", "www.example.test"
    )
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["records"] == [
        {"type": "CNAME", "name": "www.example.test.", "value": "example.test.", "ttl": 0}
    ]
    assert obj["canonical"] == "example.test" and obj["aliases"] == ["www.example.test"]
    human = invoke(runner, "--server", refusing_dns, "--type", "CNAME", "www.example.test")
    assert "www.example.test. -> example.test." in human.stdout
    assert "IPv4" not in human.stdout  # addresses were not asked for


def test_a_and_aaaa_through_a_cname_list_each_record_once(
    runner: CliRunner, refusing_dns: str
) -> None:
    obj = json.loads(invoke(runner, "--server", refusing_dns, "--json", "www.example.test").stdout)
    kinds = [(r["type"], r["value"]) for r in obj["records"]]
    assert sorted(kinds) == [("A", "127.0.0.42"), ("AAAA", "::42"), ("CNAME", "example.test.")]
    assert obj["canonical"] == "example.test"


def test_batch_one_result_each(runner: CliRunner, refusing_dns: str) -> None:
    result = invoke(
        runner,
        "--server",
        refusing_dns,
        "--json",
        "only-a.example",
        "not-here.example",
        "example.test",
    )
    assert result.exit_code == 1  # one of them found nothing
    got = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(o["event"], o["query"]) for o in got] == [
        ("resolved", "only-a.example"),
        ("unresolved", "not-here.example"),
        ("resolved", "example.test"),
    ]
    assert got[1]["status"] == {"A": "refused", "AAAA": "refused"}
    assert got[1]["source"] == f"dns {refusing_dns}"
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "not-here.example" in errors[0]
    ok = invoke(runner, "--json", "localhost", "127.0.0.1")
    assert ok.exit_code == 0, ok.output
    assert [json.loads(line)["query"] for line in ok.stdout.splitlines()] == [
        "localhost",
        "127.0.0.1",
    ]


SILENT_DNS = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 53))
t = socket.socket()
t.bind(("127.0.0.1", 53))
t.listen()
print("ready", flush=True)
u.settimeout(60)
try:
    while True:
        u.recv(4096)
except OSError:
    pass
"""


def test_timeout_bounds_the_system_resolver(tmp_path: Path) -> None:
    """A silent DNS server (in a network and mount namespace of the test's
    own, so /etc/resolv.conf is not touched): --timeout 1 ends the lookup."""
    for tool in ("unshare", "ip", "mount"):
        assert shutil.which(tool), f"{tool} is needed (util-linux, iproute2)"
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:3\n")
    server = tmp_path / "silent.py"
    server.write_text(SILENT_DNS)
    fifo = tmp_path / "ready"
    script = f"""
set -e
ip link set lo up
mount --bind {resolv} /etc/resolv.conf
mkfifo {fifo}
python3 {server} > {fifo} &
pid=$!
read line < {fifo}
set +e
start=$(date +%s%N)
{NETKIT} resolve --timeout 1 nosuch-name.example
rc=$?
end=$(date +%s%N)
kill $pid
wait $pid
echo "rc=$rc ms=$(( (end - start) / 1000000 ))" >&2
exit $rc
"""
    proc = subprocess.run(
        ["unshare", "-mn", "sh", "-c", script],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "no answer from the system resolver within 1 s" in proc.stderr
    ms = int(proc.stderr.rsplit("ms=", 1)[1].split()[0])
    assert ms < 5000, proc.stderr  # resolv.conf alone would take 15 s

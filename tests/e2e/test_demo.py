"""netkit demo end to end: a real process, bounded, exit 0, nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from tests.helpers import NETKIT, env, read_line, read_pty
from tests.proc import bound_ports, in_group
from tests.reliability.proc_util import wait_until


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One full `netkit demo --json` run, in an empty directory with an empty HOME."""
    home = tmp_path_factory.mktemp("demo-home")
    proc = subprocess.Popen(
        [NETKIT, "demo", "--json", "--seconds", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=home,
        env=env(HOME=str(home), TMPDIR=str(home)),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    events = [json.loads(line) for line in out.decode().splitlines()]
    return {
        "code": proc.returncode,
        "events": events,
        "stderr": err,
        "pgid": proc.pid,
        "home": home,
    }


def claims(run: dict[str, Any], exercise: str) -> list[dict[str, Any]]:
    return [e for e in run["events"] if e["event"] == "claim" and e["exercise"] == exercise]


def test_exits_0_and_every_claim_holds(demo_run: dict[str, Any]) -> None:
    assert demo_run["code"] == 0, demo_run["stderr"]
    sections = [e["exercise"] for e in demo_run["events"] if e["event"] == "exercise"]
    assert sections == ["1", "2", "3", "4", "5", "addresses"]
    all_claims = [e for e in demo_run["events"] if e["event"] == "claim"]
    assert len(all_claims) >= 10
    assert [c["claim"] for c in all_claims if not c["holds"]] == []


def test_leaves_no_process_port_or_file_behind(demo_run: dict[str, Any]) -> None:
    assert in_group(demo_run["pgid"]) == []
    used: set[int] = set()
    for e in demo_run["events"]:
        if e["event"] == "step":
            used.update(
                int(p) for p in re.findall(r"(?:--port |127\.0\.0\.1:)(\d{4,5})\b", e["what"])
            )
    assert len(used) >= 8
    assert used & (bound_ports("tcp", listening=True) | bound_ports("udp")) == set()
    assert list(Path(demo_run["home"]).iterdir()) == []


def test_refused_client_is_told_at_once(demo_run: dict[str, Any]) -> None:
    refused = next(c for c in claims(demo_run, "1") if "refused" in c["claim"])
    assert refused["holds"]
    assert refused["evidence"]["elapsed_ms"] < 500 < refused["evidence"]["timeout_s"] * 1000


def test_creosote_message_collected_whole(demo_run: dict[str, Any]) -> None:
    steps = [e for e in demo_run["events"] if e["event"] == "step" and e["exercise"] == "2"]
    spewed = next(s for s in steps if s["actor"] == "spew")["detail"]
    collected = next(s for s in steps if "collected" in s["what"])["detail"]
    assert spewed["chunks"] > 1
    assert collected == {"bytes": spewed["bytes"], "chunks": spewed["chunks"]}
    assert all(c["holds"] for c in claims(demo_run, "2"))


def test_second_sync_client_really_waited(demo_run: dict[str, Any]) -> None:
    sync, thread = claims(demo_run, "4")
    assert sync["evidence"]["waited_s"] >= 0.9 * sync["evidence"]["first_stayed_s"]
    assert thread["evidence"]["waited_s"] < sync["evidence"]["first_stayed_s"] / 2
    logged = [
        e
        for e in demo_run["events"]
        if e["event"] == "step" and "logged" in e["what"] and e["exercise"] == "4"
    ]
    assert logged, "sync mode logs the waiting client"


def test_aborted_client_is_logged_and_server_keeps_serving(demo_run: dict[str, Any]) -> None:
    abort = next(c for c in claims(demo_run, "3") if "aborts" in c["claim"])
    assert abort["holds"] and abort["evidence"]["reason"] == "eof"


def test_daytime_time_and_sntp_tell_the_same_instant(demo_run: dict[str, Any]) -> None:
    same = next(c for c in claims(demo_run, "3") if "same instant" in c["claim"])
    assert same["holds"] and "sntp" in same["claim"]
    assert abs(same["evidence"]["sntp_unix"] - same["evidence"]["rfc868_unix"]) <= 2
    refused = next(c for c in claims(demo_run, "3") if "unsynchronised" in c["claim"])
    assert refused["holds"]


def test_mode_comparison_table(demo_run: dict[str, Any]) -> None:
    """Exercise 5 measured from processes of its own: the figures that keep their
    order from run to run are what each model costs (threads, processes, memory)."""
    from netkit.demo import IDLE, TABLE_COLUMNS

    table = next(e for e in demo_run["events"] if e["event"] == "table")
    assert table["columns"] == list(TABLE_COLUMNS)
    assert [row[0] for row in table["rows"]] == ["thread", "fork", "async"]
    steps = {
        e["detail"]["mode"]: e["detail"]
        for e in demo_run["events"]
        if e["event"] == "step" and e["exercise"] == "5" and "mode" in e["detail"]
    }
    assert list(steps) == ["thread", "fork", "async"]
    for got in steps.values():
        assert got["requests"] > 0 and got["errors"] == 0
        assert got["requests_per_second"] > 0 and 0 < got["p50_ms"] <= got["p99_ms"]
        assert got["cpu_us_per_request"] > 0 and got["rss_kib"] > 0 and got["pss_kib"] > 0
    thread, fork, loop = steps["thread"], steps["fork"], steps["async"]
    assert thread["processes"] == 1 and thread["threads"] > IDLE  # one per client
    assert fork["processes"] > IDLE  # one per client
    assert loop["processes"] == 1 and loop["threads"] < 10
    assert fork["pss_kib"] > loop["pss_kib"] and fork["rss_kib"] > thread["rss_kib"]
    assert "this machine" in table["note"]
    assert [c["holds"] for c in claims(demo_run, "5")] == [True, True, True]


def test_no_progress_in_a_pipe(demo_run: dict[str, Any]) -> None:
    assert b"measuring" not in demo_run["stderr"]
    assert all(e["event"] != "progress" for e in demo_run["events"])


def test_progress_on_a_terminal() -> None:
    out = read_pty([NETKIT, "demo", "5", "--seconds", "0.5"], env(), columns=100)
    assert b"measuring --mode thread" in out and b"measuring --mode async" in out
    assert b"Traceback" not in out


@pytest.mark.parametrize("whom", ["group", "demo"])
def test_ctrl_c_stops_every_process_it_started(whom: str) -> None:
    """Ctrl-C (SIGINT to the foreground group, as a terminal sends it, or to the
    demo alone) while exercise 5 measures: one line, exit 130, no process left."""
    proc = subprocess.Popen(
        [NETKIT, "demo", "5", "--json", "--seconds", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        while json.loads(read_line(proc.stdout, 20))["event"] != "step":
            pass  # the measurement begins after its first step
        deadline = time.monotonic() + 20
        # the server and its five load generators are up (bounded; waits on the demo)
        while len(in_group(proc.pid)) < 7 and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
        assert len(in_group(proc.pid)) >= 7, in_group(proc.pid)
        if whom == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=5)
    assert proc.returncode == 130, err
    assert err.decode().splitlines() == [
        "Aborted: the demo was interrupted; everything it started is stopped."
    ]
    assert in_group(proc.pid) == []  # each was waited for before the demo exited


def test_one_exercise_by_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "addresses", "--no-color"], prog_name="netkit")
    assert result.exit_code == 0, result.output
    assert "192.168.1.1" in result.output and "c0 a8 01 01" in result.output
    assert "Exercise 1" not in result.output


def test_unknown_exercise_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "6"], prog_name="netkit")
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_human_output_on_a_pipe_is_plain() -> None:
    proc = subprocess.run(
        [NETKIT, "demo", "udp"], capture_output=True, timeout=30, env=env(), cwd=os.getcwd()
    )
    assert proc.returncode == 0
    assert b"Exercise 1" in proc.stdout and b"\x1b" not in proc.stdout


def _established_tcp(pids: list[int]) -> int:
    """How many ESTABLISHED TCP sockets (IPv4 or IPv6) the processes *pids* hold."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue  # gone meanwhile
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                    count += 1
    return count


def test_ctrl_c_while_exercise_5_measures_is_quiet_and_exits_130() -> None:
    """Issue 14 item 24: a real SIGINT while exercise 5's clients are busy: no
    traceback from the measuring threads, one line, exit 130."""
    import signal

    proc = subprocess.Popen(
        [NETKIT, "demo", "5", "--json", "--seconds", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "exercise" and first["exercise"] == "5", first
        # wait (bounded) until the measuring clients are connected and busy
        busy = wait_until(lambda: _established_tcp([proc.pid, *in_group(proc.pid)]) >= 2, 30, proc)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert busy, "exercise 5 never connected a client"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=5)
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception in thread" not in stderr, stderr
    assert stderr.strip().splitlines() == [
        "Aborted: the demo was interrupted; everything it started is stopped."
    ], stderr
    assert in_group(proc.pid) == []


def _demo_on_pty(columns: int) -> str:
    e = env(TERM="xterm-256color", NO_COLOR="1")
    e.pop("COLUMNS", None)
    out = read_pty([NETKIT, "demo", "1", "3"], e, columns=columns)
    return out.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 132])
def test_prose_wraps_at_word_boundaries_on_a_terminal(columns: int) -> None:
    """Issue 14 item 5: on a terminal each question, step and claim wraps between words,
    further lines indented under its text; the words are those of a 400-column run
    (numbers aside: ports and times differ from run to run)."""
    out = _demo_on_pty(columns)
    wide = _demo_on_pty(400)
    lines = out.splitlines()
    assert any(line.startswith("Q: ") for line in lines), out
    for line in lines:
        assert len(line) <= columns, (columns, line)

    def words(text: str) -> list[str]:  # the rules under each title are as wide as the screen
        return [re.sub(r"[-+]?[0-9]+", "0", w) for w in text.split() if w.strip("─")]

    assert words(out) == words(wide)
    if columns == 80:
        continued = [line for line in lines if line.startswith("            ")]
        assert continued, out  # a step did wrap, under its text
    assert max(len(line) for line in wide.splitlines()) > 132  # the wide run did not wrap

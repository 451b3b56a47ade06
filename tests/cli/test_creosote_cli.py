"""The real `netkit creosote` process: listen and spew, log file, signals, exit codes."""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NETKIT, Server, env, read_line, run
from tests.peer_process import free_udp_port


def summary_of(out: bytes) -> dict[str, int]:
    last = json.loads(out.decode().splitlines()[-1])
    assert last["event"] == "summary"
    counts: dict[str, int] = last["counts"]
    return counts


def test_listen_json_and_spew() -> None:
    with Server("creosote", "listen", "--port", "0", "--json") as srv:
        assert srv.listening["transport"] == "udp"
        res = run("creosote", "spew", "--port", str(srv.port), "hello", "[bold]world[/]")
        assert res.returncode == 0, res.stderr
        assert res.stdout == b""
        assert res.stderr.decode().startswith("sent 20 bytes in 1 chunk")
        ev = srv.next_event()
        assert {k: ev[k] for k in ("event", "text", "bytes", "chunks", "syslog")} == {
            "event": "message",
            "text": "hello [bold]world[/]",
            "bytes": 20,
            "chunks": 1,
            "syslog": None,
        }
        assert ev["peer"].startswith("127.0.0.1:") and "T" in ev["time"]
        code, out, _err = srv.stop(signal.SIGINT)
    assert code == 0
    assert summary_of(out)["messages"] == 1


def test_spew_stdin_chunked_and_aliases() -> None:
    data = "ünïcödé log line\n".encode() * 300 + b"\xff\x1b[2J end"
    with Server("creosote-listen", "--port", "0", "--json", "--count", "1") as srv:
        res = run(
            "creosote-spew", "-p", str(srv.port), "--chunk-size", "200", "--json", "-", input=data
        )
        assert res.returncode == 0, res.stderr
        sent = json.loads(res.stdout)
        assert sent["event"] == "sent" and sent["bytes"] == len(data) and sent["chunks"] > 20
        ev = srv.next_event()
        assert ev["chunks"] == sent["chunks"] and ev["bytes"] == len(data)
        assert base64.b64decode(ev["data_b64"]) == data  # the exact bytes come back
        assert srv.proc.wait(timeout=10) == 0  # --count 1
        srv.stop()


def test_listen_human_output_is_escaped() -> None:
    port = free_udp_port()
    proc = subprocess.Popen(
        [NETKIT, "creosote", "listen", "--port", str(port), "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        assert b"listening on udp" in read_line(proc.stderr, 10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"evil \x1b]8;;http://x\x1b\\link [red]x[/]\r\nforged", ("127.0.0.1", port))
            s.sendto(b"<131>Nov 25 18:49:08 vm app2[7]: disk \x1b[5m", ("127.0.0.1", port))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    # a multi-line message is shown as its lines, the rest indented: a "forged"
    # second line can never start like a record of its own (time, source)
    assert len(lines) == 3 and b"\x1b" not in out
    assert lines[0].endswith(" evil \\x1b]8;;http://x\\x1b\\\\link [red]x[/]")
    assert lines[1] == "    forged"
    assert lines[2].endswith(" local0.err vm app2[7]: disk \\x1b[5m")


def test_spew_usage_errors_exit_2() -> None:
    for args, needle in (
        (["--chunk-size", "35", "😀" * 50], b"too small"),
        (["--chunk-size", "20", "x"], b"--chunk-size"),
        (["--chunk-size", "70000", "x"], b"--chunk-size"),
        (["-", "x"], b"only MESSAGE"),
        (["--port", "0", "x"], b"port"),
        (["--lines", "x"], b"--lines reads stdin"),
        (["--level", "loud", "x"], b"unknown level"),
    ):
        res = run("creosote", "spew", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert needle in res.stderr and b"Traceback" not in res.stderr


def test_spew_refused_exit_1() -> None:
    res = run("creosote", "spew", "--port", str(free_udp_port()), "--timeout", "5", "hello?")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "no listener on 127.0.0.1:" in err


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_logfile_refused_before_listening(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "log"
    if kind == "symlink":
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    res = run("creosote", "listen", "--port", "0", "--json", "--logfile", str(path))
    assert res.returncode == 1
    assert res.stdout == b""  # no listening event: refused before binding
    assert b"give the path of a regular file" in res.stderr and b"Traceback" not in res.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_ten_thousand_datagrams_then_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    with Server(
        "creosote", "listen", "--port", "0", "--json", "--quiet", "--logfile", str(log)
    ) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", srv.port))
            for i in range(10_000):
                s.send(b"message %05d \x1b[31m" % i)
        code, out, err = srv.stop(signal.SIGTERM, timeout=30)
    assert code == 0, err
    counts = summary_of(out)
    lines = log.read_text().splitlines()
    print(f"listener received {counts['messages']} of 10000")  # shown with pytest -s
    assert counts["messages"] > 0
    assert len(lines) == counts["messages"] == counts["logged"] == counts["datagrams"]
    assert all(ln.endswith(" \\x1b[31m") for ln in lines)
    numbers = [int(ln.split()[3]) for ln in lines]
    assert numbers == sorted(set(numbers))  # in order, none twice


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_logfile_write_error_exit_1(tmp_path: Path) -> None:
    """A full disk (here: a file size limit, EFBIG) is reported once, exit 1, not silent."""
    log = tmp_path / "debug.log"
    with Server(
        "creosote",
        "listen",
        "--port",
        "0",
        "--json",
        "--quiet",
        "--logfile",
        str(log),
        preexec_fn=_small_file_limit,
    ) as srv:
        assert srv.proc.stderr is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(20):
                s.sendto(b"x" * 500, ("127.0.0.1", srv.port))
        # reported when it happens; the listener goes on (messages are still shown)
        assert b"cannot write to log file" in read_line(srv.proc.stderr, 10)
        code, out, err = srv.stop()
    assert code == 1  # at the end
    assert b"cannot write to log file" not in err and b"Traceback" not in err
    assert b"is incomplete" in err
    assert summary_of(out)["messages"] == 20


def test_listen_names_its_logfile_in_the_banner_and_the_listening_event(tmp_path: Path) -> None:
    log = tmp_path / "records\x1b[2J.log"  # a file name is shown escaped like any text
    proc = subprocess.Popen(
        [NETKIT, "creosote", "listen", "--port", "0", "--logfile", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    try:
        banner = read_line(proc.stderr, 10).decode()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert banner.startswith("listening on udp 127.0.0.1:") and "\x1b" not in banner
    shown = str(log).replace("\x1b", "\\x1b")
    assert banner.rstrip("\n").endswith(f", logging to {shown} (Ctrl-C to stop)"), banner
    with Server("creosote", "listen", "--port", "0", "--json", "--logfile", str(log)) as srv:
        assert srv.listening["logfile"] == str(log)
        srv.stop()
    with Server("upper-server", "serve", "--port", "0", "--json") as srv:
        assert "logfile" not in srv.listening  # only when there is one
        srv.stop()


# --------------------------------------------------------------------------
# filters and --forward, through the real process


def _record(logger: str, level: str, message: str) -> bytes:
    return json.dumps({"level": level, "logger": logger, "message": message}).encode()


def _send_all(port: int, datagrams: list[tuple[str, bytes]]) -> None:
    """Each (source address, datagram) from a socket bound to that source."""
    for source, data in datagrams:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.sendto(data, ("127.0.0.1", port))


def _listen_and_send(
    args: list[str], datagrams: list[tuple[str, bytes]], last: str
) -> tuple[list[dict[str, object]], dict[str, int], bytes]:
    """Run ``creosote listen ARGS``, send *datagrams*, wait for the message *last*;
    (messages shown, summary counts, stderr)."""
    with Server("creosote", "listen", "--port", "0", "--json", *args, collect=True) as srv:
        _send_all(srv.port, datagrams)
        srv.wait_for(
            lambda evs: any(e.get("text") == last for e in evs), 10, f"the message {last!r}"
        )
        code, out, err = srv.stop(signal.SIGTERM)
    assert code == 0, err
    shown = [e for e in map(json.loads, out.decode().splitlines()) if e["event"] == "message"]
    return shown, summary_of(out), err


def test_logger_filter_is_a_prefix_match_on_dotted_names() -> None:
    names = ["app", "app.db", "apple", "other", "app.db.pool", "", "App"]
    datagrams = [("127.0.0.1", _record(n, "info", f"from {n or '-'}")) for n in names]
    datagrams.append(("127.0.0.1", _record("app", "info", "last")))
    shown, counts, _err = _listen_and_send(["--logger", "app"], datagrams, "last")
    assert [e["logger"] for e in shown] == ["app", "app.db", "app.db.pool", "app"]
    assert counts["messages"] == len(datagrams)
    assert counts["filtered"] == 4  # apple, other, no logger, App (case matters)
    shown, counts, _err = _listen_and_send(
        ["--logger", "app.db."],
        [*datagrams[:-1], ("127.0.0.1", _record("app.db", "info", "z"))],
        "z",
    )
    assert [e["logger"] for e in shown] == ["app.db", "app.db.pool", "app.db"]


def test_source_filter_shows_one_sender_only() -> None:
    datagrams = [
        ("127.0.0.1", _record("a", "info", "from one")),
        ("127.0.0.2", _record("a", "info", "from two")),
        ("127.0.0.3", b"<11>app: from three"),
        ("127.0.0.2", _record("a", "info", "last")),
    ]
    shown, counts, _err = _listen_and_send(["--source", "127.0.0.2"], datagrams, "last")
    assert [e["text"] for e in shown] == ["from two", "last"]
    assert all(str(e["peer"]).startswith("127.0.0.2:") for e in shown)
    assert (counts["messages"], counts["filtered"]) == (4, 2)


def test_filter_log_applies_the_filters_to_the_log_file_and_forwarding(tmp_path: Path) -> None:
    datagrams = [
        ("127.0.0.1", _record("app", "info", "an info")),
        ("127.0.0.1", _record("app", "error", "an error")),
        ("127.0.0.1", _record("app", "debug", "a debug")),
        ("127.0.0.1", _record("app", "warning", "last")),
    ]
    for filter_log in (False, True):
        log = tmp_path / f"filter-log-{filter_log}.log"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
            target.bind(("127.0.0.1", 0))
            target.settimeout(10)
            url = f"syslog+udp://127.0.0.1:{target.getsockname()[1]}"
            args = ["--level", "warning", "--logfile", str(log), "--forward", url]
            shown, counts, err = _listen_and_send(
                args + (["--filter-log"] if filter_log else []), datagrams, "last"
            )
            expected = (
                ["an error", "last"] if filter_log else ["an info", "an error", "a debug", "last"]
            )
            forwarded = [target.recv(65536) for _ in expected]
            target.settimeout(0.2)  # nothing more: that is the point of --filter-log
            with pytest.raises(TimeoutError):
                target.recv(65536)
        assert [e["text"] for e in shown] == ["an error", "last"]
        assert [f.rsplit(b"] ", 1)[-1].decode() for f in forwarded] == expected
        lines = log.read_text().splitlines()
        assert len(lines) == len(expected), lines
        assert all(line.endswith(f" {m}") for line, m in zip(lines, expected, strict=True)), lines
        assert counts["messages"] == 4 and counts["filtered"] == 2, counts
        assert counts["forwarded"] == len(expected), counts
        assert counts["logged"] == len(expected), counts
        assert "not_logged" not in counts, (counts, err)  # filtered on purpose, not lost


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:514", "syslog+tcp://HOST:PORT or relp://HOST:PORT"),
        ("syslog+tcp://127.0.0.1", "give a host and a port"),
        ("syslog+tcp://127.0.0.1:99999", "'syslog+tcp://127.0.0.1:99999'"),
        ("syslog+tcp://127.0.0.1:514?framing=cr", "framing is octet"),
        ("syslog+tcp://127.0.0.1:514?queue=0", "queue is a number"),
        ("relp://127.0.0.1:2514?framing=lf", "framing applies to syslog+tcp only"),
        ("relp://127.0.0.1", "give a host and a port"),
        ("syslog+udp://[::1:514", "'syslog+udp://[::1:514'"),
        ("syslog+udp://\x1b[2J:514", "\\x1b[2J"),
    ],
)
def test_a_bad_forward_url_is_one_error_line_exit_2(url: str, why: str) -> None:
    res = run("creosote", "listen", "--port", "0", "--forward", url, timeout=10)
    assert res.returncode == 2, res
    assert res.stdout == b""
    err = res.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], err
    assert "Traceback" not in err and "\x1b" not in err
    assert "--forward" in lines[-1] and why in lines[-1], err

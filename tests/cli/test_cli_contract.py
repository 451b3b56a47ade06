"""The shared CLI contract: server/client options, error lines, exit codes, run_server."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import threading

import click
import pytest
from click.testing import CliRunner

from netkit.cli._common import (
    client_options,
    endpoint,
    failures,
    renderer,
    run_server,
    server_options,
)
from netkit.events import Listening
from netkit.net import NetError, bind_socket, bound_address, connect_socket
from netkit.services.core import Service


class TinyServer(Service):
    """A UDP service that counts datagrams: enough to drive run_server."""

    def __init__(self, sink, host: str, port: int, count: int | None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(sink, count=count)
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def _start(self) -> tuple[str, int]:
        self.sock = bind_socket(self.host, self.port, socktype=socket.SOCK_DGRAM)
        self.sock.settimeout(0.05)
        addr = bound_address(self.sock)
        self.emit(Listening(host=addr[0], port=addr[1], transport="udp"))
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return addr

    def _loop(self) -> None:
        assert self.sock is not None
        while not self.stop_requested:
            try:
                self.sock.recvfrom(100)
            except TimeoutError:
                continue
            self.handled()

    def _stop(self, grace: float) -> None:
        assert self.thread is not None and self.sock is not None
        self.thread.join(grace)
        self.sock.close()


@click.command("tiny-serve")
@server_options(default_port=0)
def tiny_serve(host, port, version, count, quiet, json_output, no_color) -> None:  # type: ignore[no-untyped-def]
    h, p = endpoint(host, port)
    out = renderer(json_output, no_color)
    run_server(TinyServer(out, h, p, count), out)


@click.command("tiny-get")
@client_options(default_port=7)
def tiny_get(host, port, version, timeout, json_output, no_color) -> None:  # type: ignore[no-untyped-def]
    h, p = endpoint(host, port, allow_zero=False)
    with failures():
        connect_socket(h, p, socktype=socket.SOCK_STREAM, version=version, timeout=timeout).close()
    click.echo(f"{h} {p} {timeout}")


BAD = [
    (tiny_serve, ["--port", "70000"], "out of range"),
    (tiny_serve, ["--port", "-1"], "'-1' is not a port number"),
    (tiny_serve, ["--port=-1"], "not a port number"),
    (tiny_serve, ["--port", "abc"], "not a port number"),
    (tiny_serve, ["--host", ""], "empty host"),
    (tiny_serve, ["--host", "[::1"], "missing ']'"),
    (tiny_serve, ["--host", "[::1]:2345", "--port", "80"], "disagree"),
    (tiny_serve, ["--count", "0"], "--count"),
    (tiny_serve, ["--count", "x"], "--count"),
    (tiny_serve, ["--bogus"], "No such option"),
    (tiny_get, ["--timeout", "-1"], "--timeout"),
    (tiny_get, ["--timeout", "0"], "--timeout"),
    (tiny_get, ["--port", "0"], "out of range (1-65535)"),
    (tiny_get, ["--host", "a b"], "cannot contain spaces"),
]


@pytest.mark.parametrize(("command", "args", "message"), BAD, ids=[" ".join(b[1]) for b in BAD])
def test_bad_input_is_exit_2_with_one_error_line(
    runner: CliRunner, command: click.Command, args: list[str], message: str
) -> None:
    result = runner.invoke(command, args, prog_name="netkit")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error")] != []


def test_host_may_carry_the_port(runner: CliRunner) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as srv:
        srv.bind(("::1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        result = runner.invoke(tiny_get, ["--host", f"[::1]:{port}"], prog_name="netkit")
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["::1", str(port), "2.0"]


def test_refused_is_exit_1_one_line(runner: CliRunner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connect is refused
        result = runner.invoke(tiny_get, ["--port", str(port)], prog_name="netkit")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: cannot connect to 127.0.0.1:{port}: connection refused "
        "(is the server running on that port?)"
    )


def test_unresolvable_is_exit_1(runner: CliRunner) -> None:
    result = runner.invoke(tiny_get, ["--host", "no-such-host.invalid"], prog_name="netkit")
    assert result.exit_code == 1
    assert "cannot resolve 'no-such-host.invalid'" in result.output


def test_port_in_use_is_exit_1_with_a_hint(runner: CliRunner) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = runner.invoke(tiny_serve, ["--port", str(port)], prog_name="netkit")
    assert result.exit_code == 1
    assert "address already in use" in result.output
    assert "Traceback" not in result.output


def test_bind_error_names_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(NetError, match=f"cannot listen on 127.0.0.1:{port}: address already"):
            bind_socket("127.0.0.1", port, socktype=socket.SOCK_DGRAM)


def test_count_stops_the_server_with_a_summary(runner: CliRunner) -> None:
    """--count 3: the listening event first, the summary after three datagrams, exit 0."""
    port_box: list[int] = []
    ready = threading.Event()

    def send_three() -> None:
        ready.wait(5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for _ in range(3):
                c.sendto(b"x", ("127.0.0.1", port_box[0]))

    sender = threading.Thread(target=send_three)
    sender.start()

    def spy(event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, Listening):
            port_box.append(event.port)
            ready.set()

    out = renderer(True, True)

    def both(event) -> None:  # type: ignore[no-untyped-def]
        spy(event)
        out(event)

    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        run_server(TinyServer(both, "127.0.0.1", 0, 3), out)
    finally:
        sys.stdout = old
    sender.join(5)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines[0]["event"] == "listening" and lines[0]["port"] == port_box[0]
    assert lines[-1].pop("uptime") >= 0  # seconds
    assert lines[-1] == {
        "event": "summary",
        "counts": {"handled": 3},
        "reason": "stopped after --count",
    }


def test_sigterm_stops_the_server_cleanly() -> None:
    """A signal only requests a stop: the summary is printed and run_server returns."""
    server = TinyServer(lambda e: None, "127.0.0.1", 0, None)
    events: list[object] = []

    class Out:
        def __call__(self, event: object) -> None:
            events.append(event)
            if isinstance(event, Listening):
                os.kill(os.getpid(), signal.SIGTERM)

        def close(self) -> None:
            pass

    out = Out()
    server.sink = out
    run_server(server, out)
    assert getattr(events[-1], "reason", None) == "stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

"""Issue 14 item 2: HOST PORT typed the ncat way is accepted or refused, never sent as data."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from netkit.cli import cli
from netkit.events import Recorder
from netkit.events.udp_echo import Datagram
from netkit.services.tcp_time import TimeServer
from netkit.services.udp_echo import UdpEchoServer
from netkit.services.upper import UpperServer
from tests.helpers import run


@pytest.mark.parametrize(
    "args",
    [
        ["udp-echo", "send", "127.0.0.1", "{port}", "hello"],
        ["udp-echo", "send", "localhost", "{port}"],
        ["udp-echo", "send", "127.0.0.1:{port}", "hello"],
        ["udp-echo", "send", "[::1]:{port}", "hello"],
        ["udp-echo", "send", "::1", "{port}", "hello"],
        ["upper-server", "send", "127.0.0.1", "{port}", "hello"],
        ["upper-server", "send", "--udp", "example.org", "{port}", "hello"],
    ],
)
def test_send_refuses_host_port_arguments_and_sends_nothing(args: list[str]) -> None:
    events = Recorder()
    with UdpEchoServer(events, port=0) as server:
        port = server.address[1]
        argv = [a.replace("{port}", str(port)) for a in args]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2, result.output
        assert "-H " in result.output and "-p " in result.output
        assert f":{port}" in result.output  # the -H HOST:PORT spelling
        assert "Traceback" not in result.output
    assert not events.of(Datagram)


def test_send_with_options_sends_such_text_as_data() -> None:
    events = Recorder()
    with UdpEchoServer(events, port=0) as server:
        port = str(server.address[1])
        result = CliRunner().invoke(
            cli, ["udp-echo", "send", "-p", port, "--json", "127.0.0.1", "42001"]
        )
        assert result.exit_code == 0, result.output
        replies = [json.loads(line)["text"] for line in result.output.splitlines()]
        assert replies == ["127.0.0.1", "42001"]
        # ordinary words are never mistaken for an address
        plain = CliRunner().invoke(cli, ["udp-echo", "send", "-p", port, "hello", "80"])
        assert plain.exit_code == 0, plain.output


def test_tcp_time_get_takes_host_and_port_arguments() -> None:
    with TimeServer(Recorder(), port=0) as server:
        port = str(server.address[1])
        for argv in (["127.0.0.1", port], [f"127.0.0.1:{port}"], ["127.0.0.1", "-p", port]):
            result = CliRunner().invoke(cli, ["tcp-time", "get", "--json", *argv])
            assert result.exit_code == 0, (argv, result.output)
            assert json.loads(result.output)["server"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    "argv, said",
    [
        (["127.0.0.1", "8888", "extra"], "at most HOST and PORT"),
        (["127.0.0.1", "-H", "::1"], "as --host"),
        (["127.0.0.1", "8888", "-p", "9999"], "and --port"),
        (["127.0.0.1:8888", "9999"], "carries a port"),
        (["127.0.0.1", "http"], "not a port number"),
        (["127.0.0.1", "0"], "out of range"),
    ],
)
def test_tcp_time_get_bad_positional_is_a_usage_error(argv: list[str], said: str) -> None:
    result = CliRunner().invoke(cli, ["tcp-time", "get", *argv])
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "Traceback" not in result.output


def test_chat_takes_host_and_port_arguments() -> None:
    with UpperServer(Recorder(), port=0) as server:
        port = str(server.address[1])
        res = run("upper-server", "chat", "127.0.0.1", port, "--json", input=b"hi\n")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["text"] == "HI"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        # the argument really is used: nothing listens on this port
        res = run("upper-server", "chat", "127.0.0.1", str(closed.getsockname()[1]), input=b"")
        assert res.returncode == 1 and b"refused" in res.stderr


def test_help_names_the_spellings() -> None:
    runner = CliRunner()
    for argv in (["tcp-time", "get"], ["upper-server", "chat"]):
        out = runner.invoke(cli, [*argv, "--help"]).output
        assert "[HOST [PORT]]" in out
    for argv in (["udp-echo", "send"], ["upper-server", "send"]):
        out = runner.invoke(cli, [*argv, "--help"]).output
        assert "-H 127.0.0.1 -p" in out or "-H ::1 -p" in out

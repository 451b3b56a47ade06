"""RFC 867 / 868 clients: whole-second offsets with their bound, the other protocol named."""

from __future__ import annotations

import json
import time

import pytest

from netkit.clients.tcp_time import get_time
from netkit.events import Recorder
from netkit.net import NetError
from netkit.protocols import ntp, timeproto
from netkit.services.tcp_time import TimeServer
from tests.helpers import Server, run


@pytest.mark.parametrize(
    ("second", "sent", "received", "offset", "bound"),
    [
        (100, 100.3, 100.3, 0, 1),  # true offset in (-0.3, 0.7)
        (100, 100.9, 101.1, 0, 2),  # (-1.1, 0.1): a slow exchange widens it
        (200, 100.0, 100.0, 100, 1),
        (50, 100.5, 100.5, -50, 1),
    ],
)
def test_whole_second_offsets_hold_the_true_interval(
    second: int, sent: float, received: float, offset: int, bound: int
) -> None:
    got = timeproto.whole_second_offset(second, sent, received)
    assert got == (offset, bound)
    low, high = second - received, second + 1 - sent
    assert offset - bound <= low and high <= offset + bound


@pytest.mark.parametrize("protocol", ["daytime", "time"])
def test_offsets_are_whole_seconds_with_a_bound(protocol: str) -> None:
    with TimeServer(Recorder(), port=0, protocol=protocol, clock=lambda: time.time() + 100) as srv:
        got = get_time(*srv.address, protocol=protocol, timeout=5)
    assert isinstance(got.offset_seconds, int) and 99 <= got.offset_seconds <= 101
    assert got.offset_bound_seconds in (1, 2)


def test_daytime_client_against_a_time_server_names_rfc_868() -> None:
    # the issue's example: RFC 868 value ee ba 43 22, shown once escaped as \xee\xbaC"
    when = 0xEEBA4322 - ntp.NTP_UNIX_OFFSET
    with TimeServer(Recorder(), port=0, protocol="time", clock=lambda: when) as srv:
        got = run("tcp-time", "get", "-p", str(srv.address[1]))
    assert got.returncode == 1
    err = got.stderr.decode()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "4 bytes that are not text (ee ba 43 22: '\\xee\\xbaC\"')" in err
    assert "this looks like RFC 868: try --protocol time" in err
    assert "\\\\x" not in err  # escaped once, not twice


def test_time_client_against_a_daytime_server_names_rfc_867() -> None:
    with Server("tcp-time", "serve", "--port", "0", "--json") as srv:
        got = run("tcp-time", "get", "-p", str(srv.port), "--protocol", "time")
        srv.stop()
    assert got.returncode == 1
    err = got.stderr.decode()
    assert err.startswith("Error: time from 127.0.0.1:") and len(err.strip().splitlines()) == 1
    assert "this looks like RFC 867 daytime: try --protocol daytime" in err
    assert "\\r\\n" in err and "\\\\r" not in err


def test_human_output_shows_the_bound() -> None:
    with Server("tcp-time", "serve", "--protocol", "time", "--port", "0", "--json") as srv:
        got = run("tcp-time", "get", "-p", str(srv.port), "--protocol", "time")
        srv.stop()
    assert got.returncode == 0
    assert "s (whole seconds) from the local clock" in got.stderr.decode()
    assert " ± " in got.stderr.decode()


def test_a_short_binary_daytime_is_not_text() -> None:
    # not 4 bytes: no RFC 868 hint, but still not a daytime text
    with TimeServer(Recorder(), port=0, protocol="time") as srv:
        host, port = srv.address
        with pytest.raises(NetError, match="this looks like RFC 868"):
            get_time(host, port, protocol="daytime", timeout=5)


def test_encode_cli_json_and_bad_input() -> None:
    got = run("tcp-time", "encode", "2036-02-07T06:28:16Z", "--json")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["event"] == "encoded" and data["ntp"]["era"] == 1 and data["rfc868"]["value"] == 0
    now = run("tcp-time", "encode", "--json")
    assert abs(json.loads(now.stdout)["unix"] - time.time()) < 10
    human = run("tcp-time", "encode", "0")
    assert (
        human.returncode == 0
        and b"83 aa 7e 80" in human.stdout
        and b"1970-01-01T00:00:00Z" in human.stdout
    )
    bad = run("tcp-time", "encode", "next tuesday")
    assert bad.returncode == 2
    assert bad.stderr.decode().strip().splitlines()[-1].startswith("Error: Invalid value for WHEN")

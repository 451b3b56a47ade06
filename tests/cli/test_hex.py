"""``--hex`` (issue 14): one hex view of payloads, like ``ncat -x`` / ``socat -x``.

The rows themselves (pure), then real netkit servers and clients on loopback:
the marks (``>`` sent, ``<`` received), what each side dumps, and JSON left
as it was.
"""

from __future__ import annotations

import json
import signal
import socket
import struct

import pytest

from netkit.render.hexdump import hexdump, hexdump_lines
from tests.helpers import Server, run


def _dumped(text: str, mark: str) -> bytes:
    """The bytes of the hex rows marked *mark* in *text* (one payload after another)."""
    out = b""
    for line in text.splitlines():
        if line.startswith(f"{mark} ") and "|" in line:
            hexes = line[2:].split("  ", 1)[1][:48]  # 8 bytes, a gap, 8 bytes
            out += bytes.fromhex(hexes.replace(" ", ""))
    return out


def test_rows_offsets_hex_and_ascii() -> None:
    data = b"Hello, world\r\n\x1b[31m\xff"
    assert hexdump_lines(data, ">") == [
        "> 0000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0d 0a 1b 5b  |Hello, world...[|",
        "> 0010  33 31 6d ff                                       |31m.|",
    ]
    assert hexdump_lines(b"", "<") == ["< (empty)"]
    # exactly 16 bytes: one row; the ASCII column lines up with a full row
    [row] = hexdump_lines(bytes(range(0x41, 0x51)), "<")
    assert row == "< 0000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|"


def test_offsets_widen_past_64_kib_and_nothing_raw_reaches_the_terminal() -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes
    lines = hexdump_lines(data, "<")
    assert len(lines) == 4800
    assert lines[-1].startswith("< 12bf0  f0 f1")
    assert all(line.isascii() and line.isprintable() for line in lines)
    assert _dumped("\n".join(lines), "<") == data
    assert hexdump(b"[bold]x[/bold]", ">").plain == hexdump_lines(b"[bold]x[/bold]", ">")[0]


def test_udp_echo_send_and_serve() -> None:
    payload = b"hi \x1b[2J\xff there"
    with Server("udp-echo", "serve", "--port", "0", "--hex", human=True) as srv:
        res = run("udp-echo", "send", "--port", str(srv.port), "--hex", "-", input=payload + b"\n")
        assert res.returncode == 0, res.stderr
        code, _out, err = srv.stop(signal.SIGINT)
    out = res.stdout.decode()
    assert _dumped(out, ">") == payload
    assert _dumped(out, "<") == payload.upper()
    assert out.splitlines()[0] == r"HI \x1b[2J\xff THERE"  # the reply line as without --hex
    assert code == 0
    log = err.decode()
    assert _dumped(log, "<") == payload and _dumped(log, ">") == payload.upper()


def test_tcp_time_shows_the_rfc_868_value_as_its_four_bytes() -> None:
    for udp in ([], ["--udp"]):
        with Server(
            "tcp-time", "serve", "--port", "0", "--protocol", "time", *udp, "--hex", human=True
        ) as srv:
            res = run(
                "tcp-time", "get", "--port", str(srv.port), "--protocol", "time", *udp, "--hex"
            )
            assert res.returncode == 0, res.stderr
            _code, _out, err = srv.stop(signal.SIGINT)
        received = _dumped(res.stdout.decode(), "<")
        assert len(received) == 4
        value = struct.unpack("!I", received)[0]
        assert f"RFC 868 value {value} " in res.stderr.decode()
        assert _dumped(err.decode(), ">") == received  # what the server says it sent
        assert f"time: {value}" in err.decode()
        sent = [ln for ln in res.stdout.decode().splitlines() if ln.startswith(">")]
        assert sent == (["> (empty)"] if udp else [])  # UDP asks with an empty datagram


@pytest.mark.parametrize("udp", [False, True])
def test_upper_server_send_and_serve(udp: bool) -> None:
    flag = ["--udp"] if udp else []
    with Server("upper-server", "serve", "--port", "0", *flag, "--hex", human=True) as srv:
        res = run("upper-server", "send", "--port", str(srv.port), *flag, "--hex", "héllo")
        assert res.returncode == 0, res.stderr
        _code, _out, err = srv.stop(signal.SIGINT)
    ending = b"" if udp else b"\r\n"
    line = "héllo".encode()
    out = res.stdout.decode()
    assert _dumped(out, ">") == line + ending
    assert _dumped(out, "<") == line.upper() + ending
    assert _dumped(err.decode(), "<") == line  # the line the server logged
    if udp:
        assert _dumped(err.decode(), ">") == line.upper()


def test_upper_server_chat() -> None:
    with Server("upper-server", "serve", "--port", "0", human=True) as srv:
        res = run("upper-server", "chat", "--port", str(srv.port), "--hex", input=b"abc\n")
        srv.stop(signal.SIGINT)
    assert res.returncode == 0, res.stderr
    assert _dumped(res.stdout.decode(), ">") == b"abc\r\n"
    assert _dumped(res.stdout.decode(), "<") == b"ABC\r\n"


def test_creosote_listen() -> None:
    with Server("creosote", "listen", "--port", "0", "--hex", "--count", "1", human=True) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x = 42\x07", ("127.0.0.1", srv.port))
        _code, out, _err = srv.stop(signal.SIGINT)
    assert _dumped(out.decode(), "<") == b"x = 42\x07"


def test_json_is_the_same_with_and_without_hex() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json") as srv:
        lines = []
        for extra in ([], ["--hex"]):
            res = run("udp-echo", "send", "--port", str(srv.port), "--json", *extra, "a\xffb")
            assert res.returncode == 0, res.stderr
            [line] = res.stdout.decode().splitlines()
            lines.append(json.loads(line))
        assert lines[0].keys() == lines[1].keys()
        assert {k: v for k, v in lines[0].items() if k != "rtt_ms"} == {
            k: v for k, v in lines[1].items() if k != "rtt_ms"
        }
        assert "sent_wire" not in lines[0] and "data_b64" not in lines[0]
        first = srv.next_event()
        assert "reply_wire" not in first


def test_creosote_spew_dumps_each_datagram_with_its_chunk_header() -> None:
    message = "".join(f"word{i} " for i in range(30))  # 200-odd bytes: several chunks
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        res = run("creosote", "spew", "-p", str(port), "-s", "64", "--hex", message)
        assert res.returncode == 0, res.stderr
        assert "in 7 chunks (424 on the wire)" in res.stderr.decode()
        arrived = b"".join(listener.recv(100) for _ in range(7))
        json_run = run("creosote", "spew", "-p", str(port), "--json", "--hex", "x")
        assert listener.recv(100) == b"x"
    rows = [ln for ln in res.stdout.decode().splitlines() if ln.startswith("> ")]
    assert sum(ln.startswith("> 0000 ") for ln in rows) == 7  # one dump a datagram
    assert _dumped(res.stdout.decode(), ">") == arrived
    assert message.encode() not in arrived  # cut into chunks, each with a header
    assert [json.loads(ln)["event"] for ln in json_run.stdout.decode().splitlines()] == ["sent"]

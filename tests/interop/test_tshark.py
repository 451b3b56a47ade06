"""tshark (Wireshark's dissectors) decodes what netkit puts on the wire.

A peer nobody here wrote reads the bytes: the RFC 868 TIME dissector reads
the 4-byte value `tcp-time serve --protocol time` sent, and the ECHO
dissector sees `udp-echo` requests and replies.  Root only (capture on lo).
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers import SNTP_SERVE, Server, peer, read_line, run


class Capture:
    """tshark on lo, one decoded packet per line (``-T ek``), read as they come."""

    def __init__(self, bpf: str, decode_as: str, display: str) -> None:
        self.proc = subprocess.Popen(
            [
                peer("tshark"),
                "-i",
                "lo",
                "-f",
                bpf,
                "-d",
                decode_as,
                "-Y",
                display,
                "-T",
                "ek",
                "-l",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(20):  # tshark says when it captures; a few other lines come first
            if b"Capturing on" in read_line(self.proc.stderr, timeout=15):
                return
        raise AssertionError("tshark did not start capturing")

    def packets(self, n: int, timeout: float = 15) -> list[dict[str, Any]]:
        """The next *n* decoded packets (their layers), waiting at most *timeout* for each."""
        got: list[dict[str, Any]] = []
        while len(got) < n:
            doc = json.loads(read_line(self.proc.stdout, timeout))
            if "layers" in doc:
                got.append(doc["layers"])
        return got

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=15)


@contextmanager
def capture(bpf: str, decode_as: str, display: str) -> Iterator[Capture]:
    cap = Capture(bpf, decode_as, display)
    try:
        yield cap
    finally:
        cap.stop()


def test_rfc868_value_on_the_wire_is_what_get_reports() -> None:
    with Server("tcp-time", "serve", "--protocol", "time", "--port", "0", "--json") as srv:
        port = srv.port
        with capture(f"tcp port {port}", f"tcp.port=={port},time", "time") as cap:
            got = run("tcp-time", "get", "--protocol", "time", "--port", str(port), "--json")
            assert got.returncode == 0, got.stderr
            (packet,) = cap.packets(1)
        srv.stop()
    value = json.loads(got.stdout)["rfc868"]
    assert packet["time"]["time_time_response"] is True
    assert int(packet["time"]["time_time_time"]) == value


def test_udp_echo_request_and_upper_cased_reply_on_the_wire() -> None:
    with Server("udp-echo", "serve", "--port", "0", "--json") as srv:
        port = srv.port
        with capture(f"udp port {port}", f"udp.port=={port},echo", "echo") as cap:
            got = run("udp-echo", "send", "--port", str(port), "hello, wire")
            assert got.returncode == 0, got.stderr
            request, reply = (p["echo"] for p in cap.packets(2))
        srv.stop()
    assert request["echo_echo_request"] is True and reply["echo_echo_response"] is True
    sent = bytes.fromhex(request["echo_echo_data"].replace(":", ""))
    back = bytes.fromhex(reply["echo_echo_data"].replace(":", ""))
    assert sent == b"hello, wire"
    assert back == b"HELLO, WIRE" and len(back) == len(sent)


def test_sntp_request_and_reply_as_wireshark_decodes_them() -> None:
    with Server(*SNTP_SERVE, "--stratum", "2", "--refid", "LOCL") as srv:
        port = srv.port
        with capture(f"udp port {port}", f"udp.port=={port},ntp", "ntp") as cap:
            got = run("tcp-time", "get", "--protocol", "sntp", "--port", str(port), "--json")
            assert got.returncode == 0, got.stderr
            request, reply = (p["ntp"] for p in cap.packets(2))
        srv.stop()
    print(json.dumps(request), json.dumps(reply))
    assert int(request["ntp_ntp_flags_mode"]) == 3 and int(request["ntp_ntp_flags_vn"]) == 4
    assert int(reply["ntp_ntp_flags_mode"]) == 4 and int(reply["ntp_ntp_stratum"]) == 2
    assert int(reply["ntp_ntp_flags_li"]) == 0
    # the reply echoes the request's transmit timestamp (netkit's nonce) as its originate
    assert reply["ntp_ntp_org"] == request["ntp_ntp_xmt"]
    assert json.loads(got.stdout)["stratum"] == 2

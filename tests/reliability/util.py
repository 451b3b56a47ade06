"""Shared pieces of the reliability suite: spoofed datagrams, packet loss, summaries."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import subprocess
from collections.abc import Iterator
from typing import Any

from tests.helpers import NETKIT, env, read_line

# what must never reach a terminal or a log file raw
ESC = "\x1b"
C1 = [chr(c) for c in range(0x80, 0xA0)]
BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
RAW_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def raw_controls(text: str) -> list[str]:
    """Control characters (ESC, C1, bidi, NUL, CR, ...) in *text*; newline and tab allowed."""
    return RAW_RE.findall(text)


def summary_of(out: bytes) -> dict[str, int]:
    last = json.loads(out.decode().splitlines()[-1])
    assert last["event"] == "summary", last
    counts: dict[str, int] = last["counts"]
    return counts


def spoof(src_port: int, dst_port: int, payload: bytes) -> None:
    """Send a UDP datagram to 127.0.0.1:*dst_port* that claims to come from *src_port*.

    A raw socket (root): the UDP header is ours, the kernel adds the IP
    header.  Checksum 0 means none (allowed for IPv4).
    """
    header = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP) as raw:
        raw.sendto(header + payload, ("127.0.0.1", 0))


def free_low_port(exclude: tuple[int, ...] = ()) -> int:
    """A UDP port below 1024 that nothing on 127.0.0.1 uses now (we run as root)."""
    for port in range(950, 1000):
        if port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free UDP port in 950-999")


@contextlib.contextmanager
def packet_loss(port: int, one_in: int = 10) -> Iterator[str]:
    """Drop one in *one_in* UDP datagrams to *port* (nftables, input hook); always removed.

    The table has a name of this test's own, so nothing else is touched.
    Yields the table name.
    """
    table = f"netkit_loss_{os.getpid()}_{port}"
    rules = (
        f"add table inet {table}\n"
        f"add chain inet {table} input {{ type filter hook input priority 0 ; }}\n"
        f"add rule inet {table} input udp dport {port} numgen random mod {one_in} == 0 "
        "counter drop\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True, timeout=10)
    try:
        yield table
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True, timeout=10)


def nft_dropped(table: str) -> int:
    """Packets the table's counter dropped."""
    out = subprocess.run(
        ["nft", "-j", "list", "table", "inet", table], capture_output=True, check=True, timeout=10
    ).stdout
    for item in json.loads(out)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError(f"no counter in table {table}")


class HumanServer:
    """A real netkit server with the human renderer; port read from its stderr."""

    def __init__(self, *args: str, timeout: float = 10, **popen: Any) -> None:
        self.proc = subprocess.Popen(
            [NETKIT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env(),
            **popen,
        )
        line = read_line(self.proc.stderr, timeout).decode()
        m = re.search(r"listening on udp .*:(\d+)", line)
        assert m, line
        self.port = int(m.group(1))

    def stop(self, timeout: float = 10) -> tuple[int, bytes, bytes]:
        if self.proc.poll() is None:
            self.proc.terminate()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), True)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def __enter__(self) -> HumanServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)

"""Shared pieces of the reliability suite: spoofed datagrams, packet loss, summaries."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar


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


class Paced:
    """Send datagrams to a listener no faster than it reports them (a window in flight).

    Progress is the listener's own output: one line on *progress* (its stdout)
    per message.  Waiting is a ``select`` on its pipes with a timeout, never
    a sleep; what it writes on stderr is kept in :attr:`err`.
    """

    # what a datagram costs in a receive buffer besides its payload (sk_buff and slack)
    OVERHEAD = 1024

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        port: int,
        window: int = 2000,
        keep: bool = False,
        window_bytes: int | None = None,
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.out_fd, self.err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        for fd in (self.out_fd, self.err_fd):
            os.set_blocking(fd, False)
        self.window = window
        self.window_bytes = window_bytes
        self.cost = [0]  # with window_bytes: buffer cost of the first i datagrams sent
        self.sent = self.seen = 0
        self.err = b""
        self.tail = b""  # the end of stdout (the summary, once it stops)
        self.keep = keep
        self.out = bytearray()  # all of stdout, with keep
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))

    def send(self, payloads: Iterable[bytes]) -> None:
        for data in payloads:
            while self.sent - self.seen >= self.window or self._too_many_bytes(len(data)):
                self.wait()
            self.sock.send(data)
            self.sent += 1
            if self.window_bytes is not None:
                self.cost.append(self.cost[-1] + len(data) + self.OVERHEAD)

    def _too_many_bytes(self, size: int) -> bool:
        if self.window_bytes is None or self.seen >= self.sent:
            return False
        in_flight = self.cost[self.sent] - self.cost[min(self.seen, self.sent)]
        return in_flight + size + self.OVERHEAD > self.window_bytes

    def wait(self, timeout: float = 10) -> None:
        """Wait until the listener writes something; TimeoutError if it does not."""
        ready, _, _ = select.select([self.out_fd, self.err_fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"listener silent for {timeout} s ({self.seen} of {self.sent})")
        self.read()

    def read(self) -> None:
        for _ in range(64):  # bounded: drain what is there now
            got = False
            try:
                chunk = os.read(self.out_fd, 1 << 20)
                if chunk:
                    got = True
                    self.seen += chunk.count(b"\n")
                    self.tail = (self.tail + chunk)[-4096:]
                    if self.keep:
                        self.out += chunk
            except BlockingIOError:
                pass
            try:
                chunk = os.read(self.err_fd, 1 << 16)
                if chunk:
                    got = True
                    self.err += chunk
            except BlockingIOError:
                pass
            if not got:
                return

    def drain(self, timeout: float = 10) -> None:
        """Wait until the listener reported every message sent so far."""
        deadline = time.monotonic() + timeout
        while self.seen < self.sent:
            self.wait(max(0.0, deadline - time.monotonic()) or 0.001)

    def wait_for_err(self, text: bytes, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.err:
            self.wait(max(0.0, deadline - time.monotonic()) or 0.001)

    def close(self) -> None:
        self.sock.close()


T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def in_private_netns(fn: Callable[[], T], timeout: float = 100) -> T:
    """Run *fn* in a thread with a network namespace of its own (root), loopback up.

    Sockets it creates and processes it starts live there, and its
    ``/proc/thread-self/net/snmp`` counts only them: what other programs on
    this machine do to the UDP counters cannot disturb a measurement.  The
    namespace goes away with the thread and what it started.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=body, name="private-netns")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"still running after {timeout} s in its namespace")
    if error:
        raise error[0]
    return result[0]

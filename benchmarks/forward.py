"""Forwarding into a real rsyslogd: plain TCP syslog and RELP, side by side.

    python benchmarks/forward.py [--records 20000] [--rounds 3]

Starts Debian's rsyslogd (imtcp and imrelp on loopback ports, omfile with
one line per record) in a temporary directory, then for each target hands
``--records`` records to a :class:`~netkit.services.forward.Forwarder` in
batches the queue holds and times how long until every one is acknowledged
(TCP: by the receiver's kernel, ``SIOCOUTQ``; RELP: by imrelp's ``rsp 200``)
and until rsyslogd has written them all.  Prints records/s per round and
the RELP / TCP ratio; the issue's goal for forwarding is 1,000 records/s.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from netkit.protocols.records import Record
from netkit.services.forward import DEFAULT_QUEUE, Forwarder, parse_target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rsyslogd:
    def __init__(self, tmp: Path) -> None:
        self.tcp, self.relp = free_port(), free_port()
        self.out = tmp / "out.log"
        conf = tmp / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{tmp}")\nmodule(load="imtcp")\nmodule(load="imrelp")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.tcp}")\n'
            f'input(type="imrelp" address="127.0.0.1" port="{self.relp}")\n'
            f'*.* action(type="omfile" file="{self.out}")\n'
        )
        exe = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        self.proc = subprocess.Popen(
            [exe, "-n", "-f", str(conf), "-i", str(tmp / "pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        for port in (self.tcp, self.relp):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise SystemExit(
                            "rsyslogd did not start (apt-get install rsyslog-relp)"
                        ) from None
                    threading.Event().wait(0.05)  # nothing to wait on but the port

    def lines(self) -> int:
        if not self.out.exists():
            return 0
        with self.out.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))

    def wait_lines(self, n: int, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while self.lines() < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"rsyslogd wrote {self.lines()} of {n} lines")
            threading.Event().wait(0.01)  # a file: nothing to select on
        return time.monotonic()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def one_round(rsyslogd: Rsyslogd, url: str, records: int) -> tuple[float, float]:
    """(records/s until all acknowledged, records/s until all written)."""
    forwarder = Forwarder(parse_target(url))
    forwarder.start()
    before = rsyslogd.lines()
    batch = DEFAULT_QUEUE // 2
    start = time.monotonic()
    for i in range(records):
        forwarder.submit(Record("json", b"benchmark record %d" % i), "127.0.0.1:9")
        if i % batch == batch - 1 and not forwarder.wait_idle(60):
            raise SystemExit(f"{url}: not acknowledged within 60 s")
    if not forwarder.wait_idle(60):
        raise SystemExit(f"{url}: not acknowledged within 60 s")
    acked = time.monotonic()
    written = rsyslogd.wait_lines(before + records)
    forwarder.close()
    if forwarder.sent != records or forwarder.dropped:
        raise SystemExit(f"{url}: sent {forwarder.sent}, dropped {forwarder.dropped}")
    return records / (acked - start), records / (written - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netkit-forward-bench-") as tmp:
        rsyslogd = Rsyslogd(Path(tmp))
        try:
            targets = {
                "syslog+tcp": f"syslog+tcp://127.0.0.1:{rsyslogd.tcp}",
                "relp": f"relp://127.0.0.1:{rsyslogd.relp}",
            }
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):  # interleaved, so that both see the same machine
                for name, url in targets.items():
                    results[name].append(one_round(rsyslogd, url, args.records))
        finally:
            rsyslogd.stop()
    medians = {}
    for name, rounds in results.items():
        acked = statistics.median(r[0] for r in rounds)
        written = statistics.median(r[1] for r in rounds)
        medians[name] = written
        each = " ".join(f"{r[1]:8.0f}" for r in rounds)
        print(
            f"{name:11} {args.records} records: acknowledged {acked:8.0f}/s, written "
            f"{written:8.0f}/s (median of {len(rounds)}; rounds: {each})"
        )
    ratio = medians["relp"] / medians["syslog+tcp"]
    print(f"RELP / TCP (written per second): {ratio:.2f}x")


if __name__ == "__main__":
    main()

"""A load generator for upper-server, run as processes of its own (``netkit demo 5``).

    python -m netkit.clients.loadgen HOST PORT --idle N | --busy --seconds S [--lines L]

A process either holds ``--idle N`` connections (each sends one line and
reads its reply, so the server is surely serving it, then stays silent), or
drives one ``--busy`` connection: a line, wait for its reply, the next one,
a new connection every ``--lines`` lines (so a fork per connection is paid
for), for ``--seconds``.  Measuring from other processes keeps the clients
off the server's GIL and CPU accounting.

The conversation with whoever started it, on stdin/stdout: it prints
``ready`` once its connections are up, waits for a line on stdin (``go``),
runs, then prints one JSON object: ``requests``, ``connections``,
``errors``, ``seconds`` and ``latency_us`` (a histogram: microseconds to two
significant digits -> count), and exits.  EOF on stdin instead of ``go``
ends it at once.  Every wait is bounded (``--timeout``).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from collections import Counter

LINE = b"ping\n"
REPLY = LINE.upper()


def bucket(us: int) -> int:
    """*us* rounded down to two significant digits (a histogram's bucket)."""
    if us < 100:
        return us
    scale: int = 10 ** (len(str(us)) - 2)
    return us // scale * scale


def percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The bucket below which *fraction* of the samples lie (None: no samples)."""
    total = sum(histogram.values())
    if not total:
        return None
    want = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= want:
            return value
    return max(histogram)


def _read_reply(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < 4096:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        buf += chunk
    return buf


def hold_idle(host: str, port: int, n: int, timeout: float) -> list[socket.socket]:
    """*n* connections, each answered once, then left silent."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.sendall(LINE)
        socks.append(sock)
    for sock in socks:
        if _read_reply(sock) != REPLY:
            raise ConnectionError("unexpected reply")
    return socks


def drive(host: str, port: int, seconds: float, lines: int, timeout: float) -> dict[str, object]:
    """One busy connection after another for *seconds*; what it measured."""
    hist: Counter[int] = Counter()
    requests = connections = errors = 0
    clock = time.perf_counter_ns
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                connections += 1
                for _ in range(lines):
                    t0 = clock()
                    sock.sendall(LINE)
                    if _read_reply(sock) != REPLY:
                        errors += 1
                        break
                    hist[bucket((clock() - t0) // 1000)] += 1
                    requests += 1
                    if time.monotonic() >= deadline:
                        break
                sock.sendall(b"\n")  # the empty line ends the session
        except OSError:
            errors += 1
            if errors > 1000:
                break
    return {
        "requests": requests,
        "connections": connections,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 4),
        "latency_us": {str(k): v for k, v in hist.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netkit.clients.loadgen")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole foreground group: whoever started this cleans up
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    idle: list[socket.socket] = []
    try:
        if args.idle:
            idle = hold_idle(args.host, args.port, args.idle, args.timeout)
        print("ready", flush=True)
        if not sys.stdin.readline():
            return 1  # told to stop before it began
        if args.busy:
            result = drive(args.host, args.port, args.seconds, args.lines, args.timeout)
        else:  # the idle ones only stay until they are told to go
            sys.stdin.readline()
            result = {"connections": len(idle)}
        print(json.dumps(result), flush=True)
        return 0
    except OSError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    finally:
        for sock in idle:
            sock.close()


if __name__ == "__main__":
    sys.exit(main())

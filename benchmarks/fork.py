"""Fork benchmark: ``upper-server --mode fork`` against ``socketserver.ForkingTCPServer``.

    python benchmarks/fork.py [--duration 3] [--repeat 3]

Both serve the lecture's upper-case handler, a process per connection;
loadgen connects, sends one line and the empty line, reads to EOF and
closes (``tcp_crr -S``) with 10 clients.  Each netkit run is paired with a
ForkingTCPServer run just before it, the server pinned to CPU 1 and loadgen
to CPU 0, and the ratio of the pair is printed (the median pair with
--repeat).  The goal from issue 10 is at least 1.0x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tcp import NETKIT, Run, build, free_port, load

#: the lecture's server: socketserver's forking TCP server with a line handler
FORKING_SERVER = """
import socketserver, sys

class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline(65538)
            if line in (b"", b"\\n", b"\\r\\n"):
                break
            self.wfile.write(line.upper())

class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
    request_queue_size = 1024

with Server(("127.0.0.1", int(sys.argv[1])), Upper) as server:
    server.serve_forever()
"""

GOAL = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs; the median is shown")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument(
        "--netkit-args", default="", help="extra upper-server options (e.g. '--prefork 8')"
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netkit-bench-") as tmpdir:
        loadgen, _ref = build(Path(tmpdir))
        script = Path(tmpdir) / "forking_server.py"
        script.write_text(FORKING_SERVER)
        netkit = [*NETKIT, "upper-server", "serve", "--quiet", "--mode", "fork"]
        netkit += [*opts.netkit_args.split(), "--max-clients", "1100", "--port"]

        def run_one(argv: list[str]) -> dict[str, float]:
            port = free_port()
            server = Run([*argv, str(port)], port)
            try:
                return load(loadgen, "tcp_crr -S", port, opts.clients, opts.duration)
            finally:
                server.stop()

        print(f"{'run':4} {'ForkingTCPServer':>18} {'netkit --mode fork':>20}   ratio", flush=True)
        pairs = []
        for i in range(opts.repeat):
            base = run_one([sys.executable, str(script)])
            got = run_one(netkit)
            ratio = got["tps"] / base["tps"] if base["tps"] else 0.0
            pairs.append((ratio, base, got))
            errors = (
                f"   errors {got['errors']:.0f}/{base['errors']:.0f}"
                if got.get("errors") or base.get("errors")
                else ""
            )
            print(
                f"{i + 1:<4} {base['tps']:>13.0f} tx/s {got['tps']:>15.0f} tx/s   "
                f"{ratio:5.2f}x{errors}",
                flush=True,
            )
    pairs.sort(key=lambda p: p[0])
    ratio, base, got = pairs[len(pairs) // 2]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(
        f"median: netkit {got['tps']:.0f} tx/s, ForkingTCPServer {base['tps']:.0f} tx/s, "
        f"{ratio:.2f}x (goal {GOAL:.1f}x) {verdict}; tcp_crr -S c={opts.clients}"
    )


if __name__ == "__main__":
    main()

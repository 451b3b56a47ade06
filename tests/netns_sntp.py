"""Run inside ``unshare -n``: netkit's SNTP server on 127.0.0.1:123, then one peer client.

``python -m tests.netns_sntp [SERVER OPTIONS] -- PEER ARGV`` prints one JSON
object: the peer's exit code and output and the server's events.  Port 123
is needed by peers that cannot be pointed at another one (ntpdig); the
namespace of the test's own keeps it off the machine's real loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import Server


def main(argv: list[str]) -> int:
    split = argv.index("--")
    server_args, peer = argv[:split], argv[split + 1 :]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    with Server(
        "tcp-time", "serve", "--protocol", "sntp", "--port", "123", "--json", *server_args
    ) as srv:
        done = subprocess.run(peer, capture_output=True, timeout=30)
        code, out, err = srv.stop()
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    print(
        json.dumps(
            {
                "peer_rc": done.returncode,
                "peer_out": done.stdout.decode(errors="replace"),
                "peer_err": done.stderr.decode(errors="replace"),
                "server_rc": code,
                "server_err": err.decode(errors="replace"),
                "events": events,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Issue 14 item 12: ``--timeout`` bounds the name lookup of every client.

A silent DNS server (a UDP and a TCP socket on 127.0.0.1:53 that read and
never answer) in a network and mount namespace of the test's own, used
through a resolv.conf of the test's bind-mounted over /etc/resolv.conf (the
real one is never touched).  That resolv.conf alone would make getaddrinfo
wait 5 s x 3 attempts; with ``--timeout 1`` each client must end in about a
second, say what it waited for, and the server must really have been asked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.helpers import NETKIT, env

NAME = "nosuch-name.example"

# runs inside the namespace: the silent server in a thread, each command timed
DRIVER = r"""
import json, socket, subprocess, sys, threading, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 53))
t = socket.socket()
t.bind(("127.0.0.1", 53))
t.listen()
queries = []
def read():
    while True:
        try:
            data = u.recv(4096)
        except OSError:
            return
        queries.append(data)
threading.Thread(target=read, daemon=True).start()
out = []
for argv in json.loads(sys.argv[1]):
    before = len(queries)
    start = time.monotonic()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out.append({
        "argv": argv,
        "rc": proc.returncode,
        "stderr": proc.stderr.decode(errors="replace"),
        "seconds": time.monotonic() - start,
        "queries": len(queries) - before,
    })
print(json.dumps(out))
"""

COMMANDS = [
    ["udp-echo", "send", "-H", NAME, "hi"],
    ["tcp-time", "get", "-H", NAME],
    ["tcp-time", "get", "--udp", "-H", NAME],
    ["tcp-time", "get", "--protocol", "sntp", "-H", NAME],
    ["upper-server", "send", "-H", NAME, "hi"],
    ["upper-server", "send", "--udp", "-H", NAME, "hi"],
    ["upper-server", "chat", "-H", NAME],
    ["creosote", "spew", "-H", NAME, "hi"],
]


def test_timeout_bounds_every_clients_lookup(tmp_path: Path) -> None:
    for tool in ("unshare", "ip", "mount"):
        assert shutil.which(tool), f"{tool} is needed (util-linux, iproute2)"
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:3\n")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    argvs = [[NETKIT, *argv, "--timeout", "1"] for argv in COMMANDS]
    script = 'ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec python3 "$1" "$2"'
    proc = subprocess.run(
        ["unshare", "-mn", "sh", "-c", script, str(resolv), str(driver), json.dumps(argvs)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for res in results:
        what = " ".join(res["argv"][1:])
        assert res["queries"] >= 1, f"{what}: the silent DNS server was never asked"
        assert res["rc"] == 1, (what, res["stderr"])
        lines = res["stderr"].strip().splitlines()
        assert lines == [
            f"Error: cannot resolve {NAME!r}: no answer from the system resolver within 1 s"
        ], (what, lines)
        # the resolv.conf alone would take 15 s; 1 s of timeout, plus start-up on a busy machine
        assert res["seconds"] < 4, (what, res["seconds"])

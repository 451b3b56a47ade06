"""No leaks: 10,000 short connections and 1024 failed binds in one process.
Issue 6, item 10.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import env


@pytest.mark.timeout(120)
def test_10000_connections_1024_failed_binds_threads_fds_rss_steady() -> None:
    """Item 10: 10,000 short connections (6,000 thread mode, 2,000 async,
    2,000 tcp-time) and 1024 failed binds (port in use) through the service
    API in one process: threads at baseline ± 2, open fds unchanged, RSS
    growth < 5 MiB."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.leak_probe", "10000", "1024"],
        capture_output=True,
        timeout=100,
        env=env(),
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    got = json.loads(proc.stdout)
    base, conns, binds = got["base"], got["after_connections"], got["after_binds"]
    print(json.dumps(got))
    assert got["failed_binds"] == 1024
    for after in (conns, binds):
        assert abs(after["threads"] - base["threads"]) <= 2, got
        assert after["fds"] == base["fds"], got
        assert (after["rss_kib"] - base["rss_kib"]) / 1024 < 5, got

"""The one /proc reader of the tests: processes, their threads, descriptors and
memory, the ports bound on this machine, the kernel's UDP counters.

Every function reads /proc once and returns plain values; a process that is
gone reads as ``None`` (or is left out), never as an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

Pid = int | str  # a PID, or "self"


def stat_fields(pid: Pid) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ...]; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def processes(where: Callable[[list[str]], bool]) -> list[int]:
    """PIDs whose /proc/PID/stat fields (see :func:`stat_fields`) satisfy *where*."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(entry)
            if fields is not None and where(fields):
                out.append(int(entry))
    return out


def children(ppid: int, *, state: str | None = None) -> list[int]:
    """PIDs whose parent is *ppid* (only those in *state*, e.g. ``Z``, when given)."""
    return processes(lambda f: int(f[1]) == ppid and (state is None or f[0] == state))


def descendants(ppid: int, *, state: str | None = None) -> list[int]:
    """PIDs below *ppid*: its children, theirs, and so on (only those in
    *state* when given).  ``--mode fork`` serves each connection in a child
    of a forking process of its own: a grandchild of the server."""
    parents: dict[int, int] = {}
    states: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(entry)
            if fields is not None:
                parents[int(entry)] = int(fields[1])
                states[int(entry)] = fields[0]
    below: list[int] = []
    level = {ppid}
    for _ in range(64):  # bounded: a process tree is not that deep
        level = {pid for pid, parent in parents.items() if parent in level}
        if not level:
            break
        below.extend(sorted(level))
    return [pid for pid in below if state is None or states[pid] == state]


def zombies(ppid: int) -> list[int]:
    """PIDs of zombies below *ppid* (children, grandchildren, ...)."""
    return descendants(ppid, state="Z")


def in_group(pgid: int) -> list[int]:
    """PIDs in process group *pgid* (field 5 of stat)."""
    return processes(lambda fields: int(fields[2]) == pgid)


def alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def cpu_seconds(pid: Pid) -> float:
    """utime + stime of *pid*."""
    fields = stat_fields(pid)
    assert fields is not None, f"process {pid} is gone"
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def threads(pid: Pid) -> int:
    """Threads of *pid* (entries of /proc/PID/task)."""
    return len(os.listdir(f"/proc/{pid}/task"))


def fds(pid: Pid) -> int:
    """Open descriptors of *pid* (entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_kib(pid: Pid, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def bound_ports(proto: str, *, listening: bool = False) -> set[int]:
    """Local ports of the ``tcp`` or ``udp`` sockets (IPv4 and IPv6) of this
    network namespace; TCP only those in LISTEN with *listening*."""
    ports = set()
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if not listening or cols[3] == "0A":  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def rcvbuf_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer.

    For every socket of the calling thread's network namespace (see
    :func:`tests.reliability.util.in_private_netns`).
    """
    with open("/proc/thread-self/net/snmp", encoding="ascii") as f:
        udp = [line.split() for line in f if line.startswith("Udp:")]
    header, values = udp[0], udp[1]
    return int(values[header.index("RcvbufErrors")])

"""Batched UDP echo with Linux recvmmsg/sendmmsg through ctypes (the --quiet fast path).

Python's socket module has no recvmmsg.  Calling it from libc lets one
system call read up to :data:`BATCH` queued datagrams and one more send all
the replies, which is where a Python UDP server spends most of its time.
The buffers are preallocated once; per datagram, Python only reads the
length and source port, upper-cases in place and checks the loop guard.
:func:`available` says whether this platform has it; otherwise the plain
``recvfrom_into``/``sendto`` loop is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from netkit.protocols.echo import LoopGuard

BATCH = 64
BUFSIZE = 65_536  # one datagram per slot; the largest UDP payload is 65,507 (IPv4)
NAMESIZE = 128  # sizeof(struct sockaddr_storage)
MSG_WAITFORONE = 0x10000


class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IOVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


_libc: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            for name in ("recvmmsg", "sendmmsg"):
                fn = getattr(libc, name)
                fn.restype = ctypes.c_int
            libc.recvmmsg.argtypes = [
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_void_p,
            ]
            libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def available() -> bool:
    return _load() is not None and ctypes.sizeof(_MMsgHdr) % 4 == 0


def serve(
    sock: socket.socket,
    own: tuple[str, int],
    *,
    upper: bool,
    stop: threading.Event,
    drop: Callable[[str], None],
) -> tuple[int, int, int]:
    """Echo until *stop* is set and the socket is shut down; (received, replied, send errors).

    *drop* is called with a reason (``"low_port"``, ``"self"`` or ``"loop"``)
    for each datagram not answered.
    """
    libc = _load()
    assert libc is not None
    recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
    fd = sock.fileno()
    data = bytearray(BATCH * BUFSIZE)
    names = bytearray(BATCH * NAMESIZE)
    iovs = (_IOVec * BATCH)()
    msgs = (_MMsgHdr * BATCH)()
    data_addr = ctypes.addressof((ctypes.c_char * len(data)).from_buffer(data))
    names_addr = ctypes.addressof((ctypes.c_char * len(names)).from_buffer(names))
    for i in range(BATCH):
        iovs[i].iov_base = data_addr + i * BUFSIZE
        iovs[i].iov_len = BUFSIZE
        hdr = msgs[i].msg_hdr
        hdr.msg_name = names_addr + i * NAMESIZE
        hdr.msg_namelen = NAMESIZE
        hdr.msg_iov = ctypes.pointer(iovs[i])
        hdr.msg_iovlen = 1
    msgs_ptr = ctypes.addressof(msgs)
    mmsg_size = ctypes.sizeof(_MMsgHdr)
    # fast field access: the arrays as flat integer views
    stride = mmsg_size // 4
    len_at = _MMsgHdr.msg_len.offset // 4
    namelen_at = (_MMsgHdr.msg_hdr.offset + _MsgHdr.msg_namelen.offset) // 4
    mview = memoryview(msgs).cast("B").cast("I")
    iov_view = memoryview(iovs).cast("B").cast("Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I")
    dview = memoryview(data)
    nview = memoryview(names)

    own_host, own_port = own
    family = sock.family
    own_packed = socket.inet_pton(family, own_host.split("%", 1)[0])
    wildcard = own_packed == b"\0" * len(own_packed)
    addr_slice = (4, 8) if family == socket.AF_INET else (8, 24)

    guard = LoopGuard()
    received = replied = send_errors = 0
    try:
        while not stop.is_set():
            n = recvmmsg(fd, msgs_ptr, BATCH, MSG_WAITFORONE, None)
            if n <= 0:
                if n == 0 or stop.is_set():
                    break  # shut down by stop()
                err = ctypes.get_errno()
                if err in (errno_mod.EINTR, errno_mod.EAGAIN):
                    continue
                raise OSError(err, os.strerror(err))
            shut_down = False
            for i in range(n):
                if mview[i * stride + namelen_at] == 0:
                    # no source address: not a datagram but the end of reading (shutdown)
                    n, shut_down = i, True
                    break
            received += n
            now = time.monotonic()
            dropped: list[int] = []
            for i in range(n):
                size = mview[i * stride + len_at]
                base = i * NAMESIZE
                port = nview[base + 2] << 8 | nview[base + 3]
                if port < 1024:
                    dropped.append(i)
                    drop("low_port")
                    continue
                if port == own_port and (
                    wildcard or nview[base + addr_slice[0] : base + addr_slice[1]] == own_packed
                ):
                    dropped.append(i)
                    drop("self")
                    continue
                off = i * BUFSIZE
                reply = dview[off : off + size].tobytes()
                if upper:
                    reply = reply.upper()
                peer = nview[base : base + addr_slice[1]].tobytes()
                if guard.check(peer, dview[off : off + size], reply, now):
                    dropped.append(i)
                    drop("loop")
                    continue
                iov_view[i * 2 + 1] = size
                if upper and size:
                    dview[off : off + size] = reply
            # send the replies, skipping dropped slots and any datagram the kernel refuses
            start = 0
            for stop_at in [*dropped, n]:
                while start < stop_at:
                    sent = sendmmsg(fd, msgs_ptr + start * mmsg_size, stop_at - start, 0)
                    if sent < 0:
                        if ctypes.get_errno() == errno_mod.EINTR:
                            continue
                        send_errors += 1
                        sent = 1  # skip the one that failed
                    else:
                        replied += sent
                    start += sent
                start = stop_at + 1
            for i in range(n + shut_down):  # reset what recvmmsg and we changed
                mview[i * stride + namelen_at] = NAMESIZE
                iov_view[i * 2 + 1] = BUFSIZE
            if shut_down:
                break
    finally:
        for view in (mview, iov_view, dview, nview):
            view.release()
    return received, replied, send_errors

"""Batched UDP echo with Linux recvmmsg/sendmmsg through ctypes (the --quiet fast path).

Python's socket module has no recvmmsg.  Calling it from libc lets one
system call read up to :data:`BATCH` queued datagrams and one more send all
the replies, which is where a Python UDP server spends most of its time.
The buffers are preallocated once (:class:`Batch`); the loop that reads
them is :class:`netkit.services.loops.BatchedEchoReader`.
:func:`available` says whether this platform has it; otherwise the plain
``recvfrom_into``/``sendto`` loop is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
import sys
from typing import Any

BATCH = 64
BUFSIZE = 65_536  # one datagram per slot; the largest UDP payload is 65,507 (IPv4)
NAMESIZE = 128  # sizeof(struct sockaddr_storage)
MSG_DONTWAIT = 0x40


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
#: recvmmsg and sendmmsg as function pointers without argtypes: called with
#: plain ints and a prebuilt pointer they skip the per-call argument conversion
#: (about 0.4 us a call, which is much of a small batch's cost)
_calls: tuple[Any, Any] | None = None


def _load() -> ctypes.CDLL | None:
    global _libc, _calls
    if _libc is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            proto = ctypes.CFUNCTYPE(ctypes.c_int, use_errno=True)
            calls = (proto(("recvmmsg", libc)), proto(("sendmmsg", libc)))
        except (OSError, AttributeError):
            return None
        _libc, _calls = libc, calls
    return _libc


def available() -> bool:
    return _load() is not None and ctypes.sizeof(_MMsgHdr) % 4 == 0


class Batch:
    """Preallocated buffers for :data:`BATCH` datagrams and the two calls that fill and send them.

    The arrays are exposed as flat integer views for the reading loop
    (:class:`netkit.services.loops.BatchedEchoReader`): slot *i*'s length is
    ``msgs[i * stride + len_at]``, its source address length
    ``msgs[i * stride + namelen_at]``, its reply length ``iov[i * 2 + 1]``;
    its bytes start at ``data[i * BUFSIZE]`` and its source address at
    ``names[i * NAMESIZE]``.
    """

    def __init__(self, fd: int) -> None:
        _load()
        assert _calls is not None
        self._recvmmsg, self._sendmmsg = _calls
        self.fd = fd
        self._data = bytearray(BATCH * BUFSIZE)
        self._names = bytearray(BATCH * NAMESIZE)
        self._iovs = (_IOVec * BATCH)()
        self._msgs = (_MMsgHdr * BATCH)()
        data_addr = ctypes.addressof((ctypes.c_char * len(self._data)).from_buffer(self._data))
        names_addr = ctypes.addressof((ctypes.c_char * len(self._names)).from_buffer(self._names))
        for i in range(BATCH):
            self._iovs[i].iov_base = data_addr + i * BUFSIZE
            self._iovs[i].iov_len = BUFSIZE
            hdr = self._msgs[i].msg_hdr
            hdr.msg_name = names_addr + i * NAMESIZE
            hdr.msg_namelen = NAMESIZE
            hdr.msg_iov = ctypes.pointer(self._iovs[i])
            hdr.msg_iovlen = 1
        self._msgs_ptr = ctypes.addressof(self._msgs)
        self._mmsg_size = ctypes.sizeof(_MMsgHdr)
        # each call's pointer argument, made once: slot i's header starts at _slot_ptrs[i]
        self._slot_ptrs = [
            ctypes.c_void_p(self._msgs_ptr + i * self._mmsg_size) for i in range(BATCH)
        ]
        # what recvmmsg and the replies change, as it was: reset() copies it back
        self._msgs_bytes = memoryview(self._msgs).cast("B")
        self._iovs_bytes = memoryview(self._iovs).cast("B")
        self._msgs_fresh = memoryview(bytes(self._msgs_bytes))
        self._iovs_fresh = memoryview(bytes(self._iovs_bytes))
        self._iov_size = ctypes.sizeof(_IOVec)
        self.stride = self._mmsg_size // 4
        self.len_at = _MMsgHdr.msg_len.offset // 4
        self.namelen_at = (_MMsgHdr.msg_hdr.offset + _MsgHdr.msg_namelen.offset) // 4
        self.msgs = memoryview(self._msgs).cast("B").cast("I")
        self.iov = (
            memoryview(self._iovs)
            .cast("B")
            .cast("Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I")
        )
        self.data = memoryview(self._data)
        self.names = memoryview(self._names)

    def recv(self) -> int:
        """Read up to :data:`BATCH` queued datagrams without waiting: how many (0: none)."""
        while True:
            n: int = self._recvmmsg(self.fd, self._slot_ptrs[0], BATCH, MSG_DONTWAIT, None)
            if n >= 0:
                return n
            err = ctypes.get_errno()
            if err == errno_mod.EINTR:
                continue
            if err in (errno_mod.EAGAIN, errno_mod.EWOULDBLOCK):
                return 0
            raise OSError(err, os.strerror(err))

    def send(self, start: int, count: int) -> int:
        """Send slots *start* .. *start* + *count*; how many went (-1: the first failed)."""
        while True:
            sent: int = self._sendmmsg(self.fd, self._slot_ptrs[start], count, 0)
            if sent >= 0 or ctypes.get_errno() != errno_mod.EINTR:
                return sent

    def reset(self, n: int) -> None:
        """Undo what recvmmsg and the replies changed in the first *n* slots."""
        size = n * self._mmsg_size
        self._msgs_bytes[:size] = self._msgs_fresh[:size]
        size = n * self._iov_size
        self._iovs_bytes[:size] = self._iovs_fresh[:size]

    def release(self) -> None:
        views = (self.msgs, self.iov, self.data, self.names, self._msgs_bytes, self._iovs_bytes)
        for view in views:
            view.release()

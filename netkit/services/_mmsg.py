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
        libc = _load()
        assert libc is not None
        self._recvmmsg, self._sendmmsg = libc.recvmmsg, libc.sendmmsg
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
            n: int = self._recvmmsg(self.fd, self._msgs_ptr, BATCH, MSG_DONTWAIT, None)
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
            sent: int = self._sendmmsg(self.fd, self._msgs_ptr + start * self._mmsg_size, count, 0)
            if sent >= 0 or ctypes.get_errno() != errno_mod.EINTR:
                return sent

    def reset(self, n: int) -> None:
        """Undo what recvmmsg and the replies changed in the first *n* slots."""
        for i in range(n):
            self.msgs[i * self.stride + self.namelen_at] = NAMESIZE
            self.iov[i * 2 + 1] = BUFSIZE

    def release(self) -> None:
        for view in (self.msgs, self.iov, self.data, self.names):
            view.release()

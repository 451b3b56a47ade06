"""A floor: the least a Python UDP echo on recvmmsg/sendmmsg can do.

    python benchmarks/floors/udp_batch.py --port PORT

netkit's own batch buffers and calls (``netkit.services._mmsg.Batch``) in
a loop that only upper-cases each datagram in place and sends the batch
back: no guards, no loop detection, no counts, no stop logic.  What it
gets is what ``udp-echo serve --quiet`` (the same calls with the reply
policy) could get at most (benchmarks/udp_echo.py --floors).  A reply the
kernel refuses is not sent again: a floor, not a server.
"""

from __future__ import annotations

import select
import socket
import sys

from netkit.services import _mmsg


def main() -> None:
    port = int(sys.argv[sys.argv.index("--port") + 1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    batch = _mmsg.Batch(sock.fileno())
    msgs, iov, data = batch.msgs, batch.iov, batch.data
    slots = [
        (i * batch.stride + batch.len_at, i * _mmsg.BUFSIZE, i * 2 + 1) for i in range(_mmsg.BATCH)
    ]
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)
    while True:
        poller.poll()
        while n := batch.recv():
            for len_at, off, iov_at in slots[:n]:
                size = msgs[len_at]
                iov[iov_at] = size
                data[off : off + size] = data[off : off + size].tobytes().upper()
            batch.send(0, n)
            batch.reset(n)


if __name__ == "__main__":
    main()

"""A floor: the least a thread-per-connection upper-case server can do in Python.

    python benchmarks/floors/thread_server.py PORT

Each connection's thread loops on a blocking ``recv``, ``upper`` and
``sendall``: no session, no timeouts, no stop logic.  What it gets is what
``upper-server --mode thread`` could get at most (benchmarks/tcp.py
--floors); thread_server.c is the same design without Python.
"""

from __future__ import annotations

import socket
import sys
import threading


def serve(conn: socket.socket) -> None:
    recv, sendall = conn.recv, conn.sendall
    with conn:
        while data := recv(65_536):
            sendall(data.upper())


def main() -> None:
    with socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=1024) as listener:
        while True:
            conn, _peer = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

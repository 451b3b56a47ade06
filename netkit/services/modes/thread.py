"""``--mode thread``: one thread per connection, like ``socketserver.ThreadingMixIn``.

The server's loop accepts; each connection is served by a thread of its
own on a blocking socket, capped by ``--max-clients``.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from netkit.protocols.upper import UpperSession
from netkit.services.modes.base import Mode, close_quietly, since


class _Conn:
    __slots__ = ("idle", "peer", "session", "sock", "started")

    def __init__(self, sock: socket.socket, peer: str, session: UpperSession) -> None:
        self.sock = sock
        self.peer = peer
        self.session = session
        self.started = time.monotonic()
        self.idle = [False]


class ThreadMode(Mode):
    """A thread per connection.

    May be overridden: :meth:`serve` (what a connection's thread does) and
    :meth:`stop` (how open connections are ended: idle ones at once, the
    rest after ``--grace``).
    """

    name = "thread"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self._lock = threading.Lock()
        self._conns: dict[int, _Conn] = {}
        self._threads: set[threading.Thread] = set()
        self._made = 0  # threads made: their names

    def configure_listener(self, sock: socket.socket) -> None:
        self.preset_timeouts(sock)  # no setsockopt per connection

    def serve_connection(self, conn: socket.socket, peer: str) -> None:
        c = _Conn(conn, peer, self.server.new_session())
        self._made += 1
        name = f"netkit-conn-{self._made}"
        t = threading.Thread(target=self.serve, args=(c,), name=name, daemon=True)
        with self._lock:
            self._conns[conn.fileno()] = c
            self._threads.add(t)
        self.server.opened(peer, f"thread {name}")
        t.start()

    def serve(self, c: _Conn) -> None:
        server = self.server
        reason = "reset"

        def heard(lines: list[bytes]) -> None:
            server.heard(c.peer, lines)

        try:
            reason = self.serve_blocking(c.sock, c.session, lambda: server.stopping, c.idle, heard)
        finally:
            with self._lock:
                self._conns.pop(c.sock.fileno(), None)
            close_quietly(c.sock)
            server.closed(c.peer, c.session.lines, since(c.started), reason)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _shut(self, only_idle: bool) -> None:
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            if only_idle and not (c.idle[0] and c.session.idle):
                continue
            try:
                c.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def busy(self) -> int:
        with self._lock:
            return sum(not (c.idle[0] and c.session.idle) for c in self._conns.values())

    def _join(self, seconds: float, *, forcible: bool = False) -> None:
        """Wait for the connections' threads; with *forcible*, a :meth:`force_stop`
        (a second Ctrl-C) ends the wait within a tenth of a second."""
        server = self.server
        deadline = time.monotonic() + seconds
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            while t.is_alive() and not (forcible and server.forced):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                t.join(min(left, 0.1) if forcible else left)

    def stop(self) -> None:
        self.server.stopping = True
        self._shut(only_idle=True)
        self._join(self.server.grace, forcible=True)
        self._shut(only_idle=False)
        self._join(1.0)

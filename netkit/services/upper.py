"""upper-server: each line comes back upper-cased, in four concurrency modes.

The protocol is one sans-IO session (:class:`netkit.protocols.upper.UpperSession`);
how connections are served is a mode from :data:`netkit.services.modes.MODES`:

- ``sync``: one client at a time, like socketserver.TCPServer; but clients
  that connect meanwhile are accepted, logged as waiting and served in turn
  (TCPServer leaves them unseen in the kernel's listen backlog).
- ``thread``: one thread per connection, like ThreadingMixIn, but capped.
- ``fork``: one process per connection, like ForkingMixIn, capped, each
  child reaped as soon as it exits; or ``prefork``: N workers made at start
  that each accept and serve, replaced when one dies.

These behave like the socketserver classes, with timeouts and caps the
classes do not have; ``--impl socketserver``
(:mod:`netkit.services.upper_socketserver`) runs the classes themselves.
- ``async``: one asyncio event loop (uvloop when available) with a
  Protocol class: no per-line awaits.

Over UDP (``udp=True``) every datagram is answered on the server's loop,
behind the guards every UDP responder of netkit has
(:class:`netkit.protocols.echo.ReplyGuard`).
:class:`UpperServer` holds what every mode shares: the listening socket,
the settings, and the connection accounting (``opened``/``closed``/``turned_away``).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Any

from netkit import net
from netkit.events import Listening, Notice, Sink
from netkit.events.upper_server import Connected, Disconnected, LineEvent, Rejected, UpperDatagram
from netkit.protocols import lines as framing
from netkit.protocols.echo import ReplyGuard
from netkit.protocols.upper import EchoSession, UpperSession
from netkit.services import modes
from netkit.services.core import Server
from netkit.services.loops import DatagramReader, Loop
from netkit.services.modes.base import Mode

MODES = tuple(modes.MODES)
LOOPS = ("auto", "uvloop", "asyncio")


def can_fork() -> bool:
    return hasattr(os, "fork")


class UpperServer(Server):
    """The upper-case line server; see the module docstring for the modes."""

    thread_name = "netkit-upper"
    stop_margin = 3.0

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 2345,
        version: int | None = None,
        mode: str = "thread",
        udp: bool = False,
        count: int | None = None,
        quiet: bool = False,
        max_line: int = framing.DEFAULT_MAX_LINE,
        idle_timeout: float = 300.0,
        line_timeout: float = 30.0,
        max_clients: int | None = None,
        grace: float = 1.0,
        prefork: int = 0,
        loop: str = "auto",
        plain: bool = False,
    ) -> None:
        if mode not in modes.MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode == "fork" and not can_fork():
            raise net.UsageError("--mode fork needs os.fork(), which this platform does not have")
        if prefork and mode != "fork":
            raise net.UsageError("--prefork goes with --mode fork")
        if loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}")
        super().__init__(sink, count=count)
        self.host = host
        self.port = port
        self.version = version
        self.mode = mode
        self.udp = udp
        #: RFC 862 echo: replies unchanged, only EOF ends a session
        self.plain = plain
        self.quiet = quiet
        self.max_line = max_line
        self.idle_timeout = idle_timeout
        #: a line begun must be complete within this many seconds (slowloris)
        self.line_timeout = line_timeout
        mode_class = modes.get(mode)
        if max_clients is None:
            max_clients = mode_class.default_max_clients()
        self.max_clients = max_clients
        if prefork and prefork > max_clients:
            raise net.UsageError(f"--prefork {prefork} is more than --max-clients {max_clients}")
        self.grace = grace
        self.prefork = prefork
        self.loop_name = loop
        #: set once the server is stopping: modes close idle connections then
        self.stopping = False
        self.summary_omits = ("handled",)  # the same as connections (datagrams with --udp)
        self.open = 0
        self._total = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.strategy: Mode | None = None if udp else mode_class.create(self)

    @property
    def transport(self) -> str:
        return "udp" if self.udp else "tcp"

    @property
    def loop_used(self) -> str:
        """The event loop async mode runs on ("uvloop" or "asyncio"), else ""."""
        return str(getattr(self.strategy, "loop_used", ""))

    @property
    def listener(self) -> socket.socket:
        assert self._sock is not None
        return self._sock

    # -- what every mode shares ---------------------------------------------------
    def new_session(self) -> UpperSession:
        session = EchoSession if self.plain else UpperSession
        return session(self.max_line, log_lines=not self.quiet)

    def heard(self, peer: str, lines: list[bytes]) -> None:
        """Log the lines a session collected."""
        for line in lines:
            self.emit(LineEvent(peer, line, len(line)))

    def opened(self, peer: str, worker: str | None = None) -> None:
        """A connection is served (by *worker*: ``pid N``, ``thread NAME``)."""
        with self._lock:
            self.open += 1
            self._total += 1
            n_open, total = self.open, self._total
        self.bump("connections")
        if not self.quiet:
            self.emit(Connected(peer, n_open, total, worker))

    def closed(self, peer: str, lines: int, duration: float, reason: str) -> None:
        with self._lock:
            self.open -= 1
            n_open, total = self.open, self._total
        if lines:
            self.bump("lines", lines)
        if reason in ("line too long", "idle timeout", "line timeout", "reset"):
            self.bump(reason.replace(" ", "_"))
        if not self.quiet:
            self.emit(Disconnected(peer, lines, duration, reason, n_open, total))
        self.handled()

    def turned_away(self, peer: str) -> None:
        """A client was sent the busy reply and closed (by whoever accepted it)."""
        self.bump("rejected")
        if not self.quiet:
            self.emit(Rejected(peer, f"max clients ({self.max_clients}) reached"))

    # -- the server's life cycle -----------------------------------------------------
    def bind(self) -> tuple[str, int]:
        socktype = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        configure = self.strategy.configure_listener if self.strategy is not None else None
        self._sock = net.bind_socket(
            self.host,
            self.port,
            socktype=socktype,
            version=self.version,
            backlog=1024,
            configure=configure,
        )
        if self.strategy is not None:
            self.strategy.prepare()
        return net.bound_address(self._sock)

    def listening(self, address: tuple[str, int]) -> Listening:
        mode = None if self.udp else self.mode
        loop = self.loop_used or None
        impl = None if self.udp else "netkit"
        return Listening(
            address[0],
            address[1],
            self.transport,
            mode=mode,
            loop=loop,
            dual_stack=net.dual_stack(self._sock),
            impl=impl,
        )

    def serve(self) -> None:
        if self.strategy is not None:
            self.strategy.run()
            return
        loop = Loop(self)
        guard = ReplyGuard(net.bound_address(self.listener))
        reader = DatagramReader(
            loop, self.listener, self._datagram, on_send_error=self._send_error, guard=guard
        )
        try:
            loop.run()
        finally:
            reader.close()
            loop.close()
            self.add_counts(reader.drop_counts())

    def _datagram(self, data: memoryview, addr: Any) -> bytes:
        reply = data.tobytes() if self.plain else data.tobytes().upper()
        self.bump("datagrams")
        if not self.quiet:
            peer = net.format_peer(addr)
            self.emit(UpperDatagram(peer, len(data), bytes(data), reply_wire=reply))
        self.handled()
        return reply

    def _send_error(self, exc: OSError) -> None:
        if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
            self.emit(Notice("warning", net.describe_error(exc, "reply")))

    def busy(self) -> int:
        return self.strategy.busy() if self.strategy is not None else 0

    def _stop(self, grace: float) -> None:
        self.stopping = True
        super()._stop(grace)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()

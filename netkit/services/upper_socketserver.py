"""upper-server ``--impl socketserver``: the standard library's own classes, the lecture's handler.

netkit's modes (:mod:`netkit.services.modes`) *behave like* socketserver's
classes; this module *runs* them: ``socketserver.TCPServer`` (``--mode
sync``), ``ThreadingTCPServer`` (``thread``) and ``ForkingTCPServer``
(``fork``), each serving the lecture's :class:`UpperHandler` (a
``StreamRequestHandler``: read a line, write it back upper-cased; an empty
line or EOF ends).  A student can then watch, with the same clients and the
same log, what netkit documents as the differences:

- sync: a second client is not accepted while the first is served; it
  waits in the kernel's listen backlog (``request_queue_size``, 5) and
  nothing logs it until its turn (netkit accepts it and logs ``waiting``);
- no idle or line timeout: a silent client holds its thread, its process
  or (sync) the whole server for good;
- no line cap: ``readline()`` reads until a newline, however long the line;
- no cap on clients: a thread each, however many (ForkingMixIn waits for a
  child to exit before it forks a 41st, ``max_children``).

What netkit adds is reporting and stopping, nothing in between the client
and the handler: the events (hooks of the handler; in fork mode each child
sends them to the parent over a datagram socket), and a stop that ends
within a bound: ``shutdown()``, then the open connections get ``--grace``
to end by themselves (as ``block_on_close`` would wait for them, but
bounded; the handler cannot tell an idle client from one in the middle of a
line, so every open connection counts as busy), then their sockets are shut
(fork mode: the children get SIGTERM, SIGKILL two seconds later).
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from typing import Any

from netkit import net
from netkit.events import Listening, Notice, Sink
from netkit.events.upper_server import SOCKETSERVER_CLASSES, Connected, Disconnected, LineEvent
from netkit.protocols import lines as framing
from netkit.protocols.upper import END_EMPTY, END_EOF
from netkit.services.core import Server

MODES = tuple(SOCKETSERVER_CLASSES)
STOPPING = "server stopping"
#: fork mode: how much of one line a child sends its parent for the log (the
#: length logged is the line's own); a datagram on the report socket stays small
LOG_BYTES = 60_000
#: fork mode: after SIGTERM, how long children get before SIGKILL
KILL_AFTER = 2.0

_PID = struct.Struct("!cI")  # a report: kind, the child's pid, then the body


class UpperHandler(socketserver.StreamRequestHandler):
    """The lecture's handler: each line back upper-cased; an empty line or EOF ends.

    :meth:`handle` is the lecture's loop as it stands (no timeout, no line
    cap); :meth:`answered` and :attr:`ended` are how netkit's log learns
    what happened, and do nothing here.
    """

    ended = END_EOF

    def handle(self) -> None:
        while True:
            line = self.rfile.readline()
            if not line:  # EOF (an unterminated last line came back before it)
                self.ended = END_EOF
                return
            if framing.is_end(line):  # an empty line
                self.ended = END_EMPTY
                return
            self.wfile.write(line.upper())
            self.answered(line)

    def answered(self, line: bytes) -> None:
        """A line was answered (the lecture's handler logs nothing)."""


class ReportingHandler(UpperHandler):
    """The lecture's handler with netkit's log around it: connect, line, disconnect."""

    server: Any  # one of the classes below: they carry .service

    def setup(self) -> None:
        super().setup()
        self.lines = 0
        self.kicked = False
        self.started = time.monotonic()
        self.peer = net.format_peer(self.client_address)
        self.service: SocketserverUpper = self.server.service
        self.service.handler_started(self)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # reset by the peer, or shut by a stop
            self.ended = "reset"
        if self.kicked or self.service.child_kicked:
            self.ended = STOPPING

    def answered(self, line: bytes) -> None:
        self.lines += 1
        self.service.report_line(self.peer, framing.content(line))

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.service.handler_ended(self)

    def kick(self) -> None:
        """Close the connection from outside (a stop): the handler's read ends."""
        self.kicked = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Glue:
    """What netkit adds to each socketserver class: the address family, the
    service to report to, and errors reported instead of printed."""

    service: SocketserverUpper
    allow_reuse_address = True  # as netkit's servers: a restart binds at once

    def __init__(self, service: SocketserverUpper, family: int, address: Any) -> None:
        self.service = service
        self.address_family = family  # TCPServer.__init__ makes its socket of this family
        super().__init__(address, ReportingHandler)  # type: ignore[call-arg]

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return not self.service.stopping  # accepted while stopping: closed at once

    def server_bind(self) -> None:
        sock: socket.socket = self.socket  # type: ignore[attr-defined]
        if sock.family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
            # '::' as netkit's own servers: IPv4 too, unless -6 (net.bind_socket)
            both = self.service.version != 6 and net.is_wildcard(self.server_address)  # type: ignore[attr-defined]
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if both else 1)
        super().server_bind()  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the stdlib prints a traceback; netkit's contract is one line
        exc = sys.exc_info()[1]
        peer = net.format_peer(client_address)
        self.service.report_notice(net.describe_error(exc or Exception(), f"serving {peer}"))


class SyncServer(_Glue, socketserver.TCPServer):
    """``--mode sync``: socketserver.TCPServer."""


class ThreadServer(_Glue, socketserver.ThreadingTCPServer):
    """``--mode thread``: socketserver.ThreadingTCPServer."""


class ForkServer(_Glue, socketserver.ForkingTCPServer):
    """``--mode fork``: socketserver.ForkingTCPServer."""

    def process_request(self, request: Any, client_address: Any) -> None:
        # SIGTERM and SIGINT stay blocked in the child until its own handlers
        # are in place (finish_request); the parent's mask comes back at once
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        known = set(self.active_children or ())
        try:
            super().process_request(request, client_address)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # open from now on, though the child's own report comes later: a stop
        # in between must neither miss it nor leave it out of the busy count
        self.service.forked(set(self.active_children or ()) - known)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # ForkingMixIn calls this in the child only
        self.service.in_child(request)
        super().finish_request(request, client_address)


_CLASSES: dict[str, type[_Glue]] = {
    "sync": SyncServer,
    "thread": ThreadServer,
    "fork": ForkServer,
}


class SocketserverUpper(Server):
    """upper-server on the standard library's socketserver classes (see the module)."""

    thread_name = "netkit-socketserver"
    stop_margin = 3.0
    #: serve_forever's poll interval: how soon shutdown() takes effect
    poll_interval = 0.5

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 2345,
        version: int | None = None,
        mode: str = "thread",
        count: int | None = None,
        quiet: bool = False,
        grace: float = 1.0,
    ) -> None:
        if mode not in _CLASSES:
            raise net.UsageError(
                f"--impl socketserver runs --mode {', '.join(MODES)} (socketserver has no {mode})"
            )
        if mode == "fork" and not hasattr(os, "fork"):
            raise net.UsageError("--mode fork needs os.fork(), which this platform does not have")
        super().__init__(sink, count=count)
        self.host = host
        self.port = port
        self.version = version
        self.mode = mode
        self.quiet = quiet
        self.grace = grace
        self.summary_omits = ("handled",)  # the same as connections
        self.stopping = False
        #: in a fork-mode child, once the parent said stop (SIGTERM)
        self.child_kicked = False
        self.open = 0
        self._total = 0
        self._cond = threading.Condition()
        self._handlers: set[ReportingHandler] = set()  # thread / sync: open ones
        self._in_child = False
        self._child_sock: socket.socket | None = None  # fork: children report here
        self._parent_sock: socket.socket | None = None  # fork: the parent reads here
        self._reader: threading.Thread | None = None
        self._children: dict[int, list[Any]] = {}  # fork: pid -> [peer, lines]
        self._unreported: set[int] = set()  # fork: children forked, "connected" not read yet
        self._children_ended = threading.Event()  # fork: the stop has ended them
        self.ss: Any = None  # the socketserver instance, once bound

    @property
    def class_name(self) -> str:
        return f"socketserver.{SOCKETSERVER_CLASSES[self.mode]}"

    # -- the life cycle ----------------------------------------------------------------
    def bind(self) -> tuple[str, int]:
        ep = net.lookup(
            self.host, self.port, socktype=socket.SOCK_STREAM, version=self.version, passive=True
        )[0]
        try:
            server = _CLASSES[self.mode](self, ep.family, ep.sockaddr)
        except OSError as exc:
            raise net.NetError(net.describe_error(exc, f"cannot listen on {ep.text}")) from exc
        self.ss = server
        if self.mode == "fork":
            self._parent_sock, self._child_sock = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_DGRAM
            )
            self._reader = threading.Thread(
                target=self._read_reports, name="netkit-socketserver-reports", daemon=True
            )
            self._reader.start()
        return net.bound_address(self.ss.socket)

    def listening(self, address: tuple[str, int]) -> Listening:
        sock = self.ss.socket if self.ss is not None else None
        return Listening(
            address[0],
            address[1],
            "tcp",
            mode=self.mode,
            impl="socketserver",
            dual_stack=net.dual_stack(sock),
        )

    def serve(self) -> None:
        assert self.ss is not None
        try:
            self.ss.serve_forever(poll_interval=self.poll_interval)
        finally:
            if self.mode == "fork":
                # The children's PR_SET_PDEATHSIG fires when the *thread* that
                # forked them ends, not the process: this one stays until the
                # stop has given them their grace and ended them.
                self._children_ended.wait(self.grace + KILL_AFTER + self.stop_margin)

    def busy(self) -> int:
        with self._cond:  # the handler cannot tell an idle client from a busy one
            return self._open_now()

    def _open_now(self) -> int:
        """Open connections (under ``_cond``): those reported, and (fork) the
        children forked that have not reported theirs yet and still run."""
        if not self._unreported:
            return self.open
        active = self.ss.active_children or ()  # (only a ForkServer has children)
        return self.open + sum(1 for pid in self._unreported if pid in active)

    def _stop(self, grace: float) -> None:
        ss = self.ss
        assert ss is not None
        self.grace = grace  # (the serving thread waits as long for the children)
        self.stopping = True
        # shutdown() waits for serve_forever to return: in sync mode, not while
        # a client is served, so from a thread of its own
        stopper = threading.Thread(target=ss.shutdown, name="netkit-socketserver-stop", daemon=True)
        stopper.start()
        self._wait_closed(time.monotonic() + grace)
        if self.mode == "fork":
            self._end_children()
            self._children_ended.set()
        else:
            with self._cond:
                open_now = list(self._handlers)
            for handler in open_now:
                handler.kick()
        stopper.join(self.poll_interval + self.stop_margin)
        if self._thread is not None:
            self._thread.join(self.poll_interval + self.stop_margin)
        self._wait_closed(time.monotonic() + self.stop_margin)
        try:
            ss.server_close()  # thread: joins the handlers' threads; fork: reaps the children
        finally:
            self._close_reports()
            self.waker.close()

    def _wait_closed(self, deadline: float) -> None:
        """Until every open connection ended, *deadline*, or a forced stop."""
        with self._cond:
            while self._open_now() > 0 and not self.forced:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.1))  # short: a forced stop is a flag

    def _end_children(self) -> None:
        ss = self.ss
        assert isinstance(ss, ForkServer)
        pids = list(ss.active_children or ())
        self._signal(pids, signal.SIGTERM)
        self._wait_closed(time.monotonic() + KILL_AFTER)
        self._signal(list(ss.active_children or ()), signal.SIGKILL)

    @staticmethod
    def _signal(pids: list[int], sig: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # -- what handlers report --------------------------------------------------------------
    def handler_started(self, handler: ReportingHandler) -> None:
        if self._in_child:
            self._send(b"C", handler.peer, f"pid {os.getpid()}")
            return
        with self._cond:
            self._handlers.add(handler)
            stopping = self.stopping
        worker = f"thread {threading.current_thread().name}" if self.mode == "thread" else None
        self.opened(handler.peer, worker)
        if stopping:
            handler.kick()

    def handler_ended(self, handler: ReportingHandler) -> None:
        duration = round(time.monotonic() - handler.started, 6)
        if self._in_child:
            self._send(b"E", handler.peer, str(handler.lines), str(duration), handler.ended)
            return
        with self._cond:
            self._handlers.discard(handler)
        self.closed(handler.peer, handler.lines, duration, handler.ended)

    def report_line(self, peer: str, content: bytes) -> None:
        if self.quiet:
            return
        if self._in_child:
            self._send(b"L", peer, str(len(content)), data=content[:LOG_BYTES])
            return
        self.emit(LineEvent(peer, content, len(content)))

    def report_notice(self, message: str) -> None:
        if self._in_child:
            self._send(b"N", message)
            return
        self.emit(Notice("warning", message))

    def forked(self, pids: set[int]) -> None:
        """Fork mode, in the parent: children that now serve a connection."""
        with self._cond:
            self._unreported |= pids

    def opened(self, peer: str, worker: str | None, pid: int | None = None) -> None:
        with self._cond:
            self._unreported.discard(pid)  # (a fork-mode child: counted by open now)
            self.open += 1
            self._total += 1
            n_open, total = self.open, self._total
        self.bump("connections")
        if not self.quiet:
            self.emit(Connected(peer, n_open, total, worker))

    def closed(self, peer: str, lines: int, duration: float, reason: str) -> None:
        with self._cond:
            self.open -= 1
            n_open, total = self.open, self._total
            self._cond.notify_all()
        if lines:
            self.bump("lines", lines)
        if reason == "reset":
            self.bump("reset")
        if not self.quiet:
            self.emit(Disconnected(peer, lines, duration, reason, n_open, total))
        self.handled()

    # -- fork mode: the child's side ----------------------------------------------------
    def in_child(self, request: socket.socket) -> None:
        """In a fork-mode child, before the handler: report to the parent, obey SIGTERM."""
        from netkit.services.modes.fork import parent_death_signal

        self._in_child = True
        if self._parent_sock is not None:
            self._parent_sock.close()  # the parent's end

        def on_term(_signum: int, _frame: object) -> None:
            self.child_kicked = True
            try:
                request.shutdown(socket.SHUT_RDWR)  # the handler's read ends
            except OSError:
                pass

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to decide
        signal.signal(signal.SIGTERM, on_term)
        set_death_signal = parent_death_signal()
        if set_death_signal is not None:  # the parent killed outright: stop serving
            set_death_signal(signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    def _send(self, kind: bytes, *fields: str, data: bytes = b"") -> None:
        assert self._child_sock is not None
        body = "\0".join(fields).encode("utf-8", "surrogateescape")
        if data:
            body += b"\0" + data
        try:
            self._child_sock.send(_PID.pack(kind, os.getpid()) + body)
        except OSError:
            pass  # the parent is gone: nothing to report to

    # -- fork mode: the parent's side ---------------------------------------------------
    def _read_reports(self) -> None:
        sock = self._parent_sock
        assert sock is not None
        while True:
            try:
                msg = sock.recv(1 << 17)
            except OSError:
                return
            if msg == b"Q" or not msg:
                return
            try:
                self._report(msg)
            except (ValueError, struct.error, UnicodeDecodeError):
                continue  # not a report of ours

    def _report(self, msg: bytes) -> None:
        kind, pid = _PID.unpack_from(msg)
        body = msg[_PID.size :]
        if kind == b"L":
            peer, length, data = body.split(b"\0", 2)
            child = self._children.get(pid)
            if child is not None:
                child[1] += 1
            self.emit(LineEvent(peer.decode(), data, int(length)))
            return
        fields = body.decode("utf-8", "surrogateescape").split("\0")
        if kind == b"C":
            self._children[pid] = [fields[0], 0]
            self.opened(fields[0], fields[1], pid)
        elif kind == b"E":
            self._children.pop(pid, None)
            self.closed(fields[0], int(fields[1]), float(fields[2]), fields[3])
        elif kind == b"N":
            self.emit(Notice("warning", fields[0]))

    def _close_reports(self) -> None:
        if self._child_sock is None:
            return
        # every child is reaped: what they sent is queued before this
        try:
            self._child_sock.send(b"Q")
        except OSError:
            pass
        if self._reader is not None:
            self._reader.join(self.stop_margin)
        for pid, (peer, lines) in list(self._children.items()):  # killed before reporting
            del self._children[pid]
            self.closed(peer, lines, 0.0, STOPPING)
        for sock in (self._child_sock, self._parent_sock):
            if sock is not None:
                sock.close()

    def close(self) -> None:
        if self.ss is not None and self._thread is None:  # a failed start
            self.ss.server_close()

"""upper-server: each line comes back upper-cased, in four concurrency modes.

Every mode speaks the same protocol through :class:`LineSession` (framing
with a length cap from :mod:`netkit.protocols.lines`):

- ``sync``: one client at a time (socketserver.TCPServer); clients that
  connect meanwhile are accepted, logged as waiting and served in turn.
- ``thread``: one thread per connection (ThreadingMixIn), capped.
- ``fork``: one process per connection (ForkingMixIn), capped, each child
  reaped as soon as it exits; or ``prefork``: N workers made at start that
  each accept and serve, replaced when one dies.  Children report to the
  parent over a pipe (lines for the log, counts for the summary).
- ``async``: one asyncio event loop (uvloop when available) with a
  Protocol class: no per-line awaits.
"""

from __future__ import annotations

import collections
import errno
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from netkit import net
from netkit.events import Listening, Notice, Sink
from netkit.events.upper_server import (
    ClientWaiting,
    Connected,
    Disconnected,
    LineEvent,
    Rejected,
    UpperDatagram,
)
from netkit.protocols import lines as framing
from netkit.services.stream import (
    ACCEPT_BATCH,
    RESOURCE_ERRNOS,
    Backoff,
    LoopService,
    RateLimit,
    resource_notice,
    set_io_timeouts,
)

MODES = ("sync", "thread", "fork", "async")
LOOPS = ("auto", "uvloop", "asyncio")
DEFAULT_MAX_CLIENTS = 256
ASYNC_MAX_CLIENTS = 10_000
RECV_SIZE = 65_536


def can_fork() -> bool:
    return hasattr(os, "fork")


def async_max_clients() -> int:
    """10,000, or what the file-descriptor limit allows (less some for the server)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return ASYNC_MAX_CLIENTS
    if soft == resource.RLIM_INFINITY:
        return ASYNC_MAX_CLIENTS
    return max(1, min(ASYNC_MAX_CLIENTS, soft - 64))


def too_long_reply(max_line: int) -> bytes:
    return f"ERROR line longer than {max_line} bytes; closing\r\n".encode("ascii")


#: after a too-long line: how long to read and drop what the client still sends
DRAIN_SECONDS = 0.5
DRAIN_BYTES = 4 << 20

BUSY_REPLY = b"ERROR server busy (max clients reached); try again later\r\n"


class LineSession:
    """One connection's protocol state: lines in, upper-cased replies out."""

    __slots__ = ("framer", "lines", "on_line", "peer", "started")

    def __init__(
        self, peer: str, max_line: int, on_line: Callable[[str, bytes], None] | None
    ) -> None:
        self.peer = peer
        self.framer = framing.LineFramer(max_line)
        self.lines = 0
        self.on_line = on_line
        self.started = time.monotonic()

    @property
    def idle(self) -> bool:
        """No partial line pending: closing now loses nothing the client sent."""
        return self.framer.pending == 0

    def receive(self, data: bytes) -> tuple[bytes, str | None]:
        """Bytes received -> (reply to send, why the session ends or None)."""
        framer = self.framer
        n = len(data)
        # fast path, the common case: exactly one whole, non-empty line
        if 2 < n <= framer.max_line + 1 and framer.pending == 0 and data.find(b"\n") == n - 1:
            self.lines += 1
            if self.on_line is not None:
                self.on_line(self.peer, framing.content(data))
            return data.upper(), None
        got = framer.feed(data)
        end: str | None = None
        out: list[bytes] = []
        for line in got:
            if line == b"\n" or line == b"\r\n":
                end = "empty line"
                break
            self.lines += 1
            if self.on_line is not None:
                self.on_line(self.peer, framing.content(line))
            out.append(line.upper())
        if end is None and self.framer.too_long:
            out.append(too_long_reply(self.framer.max_line))
            end = "line too long"
        return b"".join(out), end

    def duration(self) -> float:
        return round(time.monotonic() - self.started, 6)


def serve_blocking(
    conn: socket.socket,
    session: LineSession,
    idle_timeout: float,
    stopping: Callable[[], bool],
    idle_flag: list[bool] | None = None,
) -> str:
    """Serve one connection on a blocking socket; return why it ended.

    *idle_flag* (a one-element list) is set while waiting for a new line
    with nothing pending, so a stop request may close the connection then.
    """
    conn.setblocking(True)
    set_io_timeouts(conn, idle_timeout)
    recv = conn.recv
    sendall = conn.sendall
    framer = session.framer
    fast_max = framer.max_line + 1 if session.on_line is None else -1
    while True:
        if idle_flag is not None:
            idle_flag[0] = framer.pending == 0
        # checked after the flag is set: a stop that came before is seen here,
        # one that comes after sees the flag (and shuts the socket for reading)
        if stopping():
            return "server stopping"
        try:
            data = recv(RECV_SIZE)
        except BlockingIOError:
            return "idle timeout"
        except TimeoutError:  # settimeout() fallback
            return "idle timeout"
        except OSError:
            return "reset"
        finally:
            if idle_flag is not None:
                idle_flag[0] = False
        if not data:
            return "server stopping" if stopping() else "eof"
        n = len(data)
        if 2 < n <= fast_max and data.find(b"\n") == n - 1 and framer.pending == 0:
            # one whole line and nothing to log: the common case, kept short
            session.lines += 1
            try:
                sendall(data.upper())
            except BlockingIOError:
                return "idle timeout"
            except OSError:
                return "reset"
            continue
        reply, end = session.receive(data)
        if reply:
            try:
                conn.sendall(reply)
            except BlockingIOError:
                return "idle timeout"  # the client stopped reading
            except OSError:
                return "reset"
        if end == "line too long":
            drain(conn)
        if end is not None:
            return end


def drain(conn: socket.socket) -> None:
    """Half-close, then read and drop what the client still sends (bounded).

    Closing with unread data makes the kernel send a reset, which can
    destroy the error reply before the client reads it.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(DRAIN_SECONDS)
        deadline = time.monotonic() + DRAIN_SECONDS
        got = 0
        while got < DRAIN_BYTES and time.monotonic() < deadline:
            chunk = conn.recv(RECV_SIZE)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass


def _close_fds_except(keep: list[int]) -> None:
    """In a forked child: close every descriptor from 3 up except *keep* (sorted)."""
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)


def _parent_death_signal() -> Callable[[int], None] | None:
    """Linux: a function that makes the calling process get a signal when its
    parent dies (prctl PR_SET_PDEATHSIG), or None elsewhere.

    Loaded in the parent once, so a forked child only makes one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return None

    def set_signal(sig: int) -> None:
        prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_signal


def _close(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass


class _Conn:
    """A connection tracked by the thread mode."""

    __slots__ = ("idle", "session", "sock")

    def __init__(self, sock: socket.socket, session: LineSession) -> None:
        self.sock = sock
        self.session = session
        self.idle = [False]


# -- child -> parent reports (fork mode) -----------------------------------
#   frame = 4-byte length, 1-byte kind, body
#   C peer (prefork worker accepted) | L line | E lines duration reason | N notice
_HDR = struct.Struct("!IB")


def _frame(kind: bytes, body: bytes) -> bytes:
    return _HDR.pack(len(body), kind[0]) + body


class _Child:
    __slots__ = ("buf", "end", "fd", "peer", "pid", "worker")

    def __init__(self, pid: int, fd: int, peer: str, worker: bool) -> None:
        self.pid = pid
        self.fd = fd
        self.peer = peer
        self.worker = worker
        self.buf = b""
        self.end: tuple[int, float, str] | None = None


class _ChildStop(BaseException):
    """Raised by a child's SIGTERM handler while it waits idle: exit now."""


class UpperServer(LoopService):
    """The upper-case line server; see the module docstring for the modes."""

    thread_name = "netkit-upper"

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
        max_clients: int | None = None,
        grace: float = 1.0,
        prefork: int = 0,
        loop: str = "auto",
    ) -> None:
        if mode not in MODES:
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
        self.quiet = quiet
        self.max_line = max_line
        self.idle_timeout = idle_timeout
        if max_clients is None:
            max_clients = async_max_clients() if mode == "async" else DEFAULT_MAX_CLIENTS
        self.max_clients = max_clients
        if prefork and prefork > max_clients:
            raise net.UsageError(f"--prefork {prefork} is more than --max-clients {max_clients}")
        self.grace = grace
        self.prefork = prefork
        self.loop_name = loop
        self.loop_used = ""
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._open = 0
        self._total = 0
        self._stopping = False
        self._conns: dict[int, _Conn] = {}
        self._threads: set[threading.Thread] = set()
        self._children: dict[int, _Child] = {}  # by pipe fd
        self._reports = RateLimit()
        self._death_signal = _parent_death_signal() if mode == "fork" else None
        self._async_stop: Callable[[], None] | None = None
        self._async_all_closed: Callable[[], None] = lambda: None

    # -- common ----------------------------------------------------------------
    def wake(self) -> None:
        super().wake()
        if self._async_stop is not None and self.stop_requested:
            self._async_stop()

    @property
    def transport(self) -> str:
        return "udp" if self.udp else "tcp"

    def _on_line(self, peer: str, line: bytes) -> None:
        self.emit(LineEvent(peer, line, len(line)))

    def _line_cb(self) -> Callable[[str, bytes], None] | None:
        return None if self.quiet else self._on_line

    def _opened(self, peer: str) -> None:
        with self._lock:
            self._open += 1
            self._total += 1
            n_open, total = self._open, self._total
        self.bump("connections")
        if not self.quiet:
            self.emit(Connected(peer, n_open, total))

    def _closed(self, peer: str, lines: int, duration: float, reason: str) -> None:
        with self._lock:
            self._open -= 1
            n_open, total = self._open, self._total
        if lines:
            self.bump("lines", lines)
        if reason in ("line too long", "idle timeout", "reset"):
            self.bump(reason.replace(" ", "_"))
        if not self.quiet:
            self.emit(Disconnected(peer, lines, duration, reason, n_open, total))
        self.handled()

    def _reject(self, conn: socket.socket, peer: str) -> None:
        try:
            conn.setblocking(False)
            conn.send(BUSY_REPLY)
        except OSError:
            pass
        _close(conn)
        self.bump("rejected")
        if not self.quiet:
            self.emit(Rejected(peer, f"max clients ({self.max_clients}) reached"))

    def _start(self) -> tuple[str, int]:
        socktype = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        sock = net.bind_socket(
            self.host, self.port, socktype=socktype, version=self.version, backlog=1024
        )
        self._sock = sock
        host, port = net.bound_address(sock)
        if self.mode == "async" and not self.udp:
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._async_main, args=(ready,), name=self.thread_name, daemon=True
            )
            self._thread.start()
            ready.wait(10)
            if self.failure:
                sock.close()
                raise net.NetError(self.failure)
        else:
            sock.setblocking(False)
        self.emit(Listening(host=host, port=port, transport=self.transport))
        if not (self.mode == "async" and not self.udp):
            self.run_in_background()
        return host, port

    def run(self) -> None:
        if self.udp:
            self._run_udp()
        elif self.mode == "sync":
            self._run_sync()
        elif self.mode == "fork" and self.prefork:
            self._run_prefork()
        else:
            self._run_accepting()

    def _stop(self, grace: float) -> None:
        self.grace = grace
        self._stopping = True
        self.wake()
        if self._async_stop is not None:
            self._async_stop()
        self.join(grace + 3.0)
        deadline = time.monotonic() + 1.0
        for t in list(self._threads):
            t.join(max(deadline - time.monotonic(), 0.0))
        if self._sock is not None:
            self._sock.close()
        self.close_wake()

    # -- UDP -------------------------------------------------------------------
    def _run_udp(self) -> None:
        sock = self._sock
        assert sock is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(sock, selectors.EVENT_READ)
            while not self.stop_requested:
                sel.select()
                self.drain_wake()
                for _ in range(ACCEPT_BATCH):
                    if self.stop_requested:
                        break
                    try:
                        data, addr = sock.recvfrom(net.UDP_MAX_PAYLOAD)
                    except BlockingIOError:
                        break
                    except OSError:
                        continue
                    try:
                        sock.sendto(data.upper(), addr)
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                            self.emit(Notice("warning", net.describe_error(exc, "reply")))
                    self.bump("datagrams")
                    if not self.quiet:
                        self.emit(UpperDatagram(net.format_peer(addr), len(data), data))
                    self.handled()

    # -- accept loop shared by thread and fork ----------------------------------
    def _run_accepting(self) -> None:
        sock = self._sock
        assert sock is not None
        fork = self.mode == "fork"
        backoff = Backoff()
        with selectors.DefaultSelector() as sel:
            self._sel = sel
            sel.register(self._wake_r, selectors.EVENT_READ, None)
            sel.register(sock, selectors.EVENT_READ, None)
            listening = True
            while not self.stop_requested:
                if not listening and not backoff.active:
                    sel.register(sock, selectors.EVENT_READ, None)
                    listening = True
                timeout: float | None = None if listening else backoff.remaining()
                ready = sel.select(timeout)
                for key, _ev in ready:
                    if key.fileobj == self._wake_r:
                        self.drain_wake()
                    elif key.fileobj is sock:
                        error = self._accept_batch(sock, fork)
                        if error is not None and listening:
                            delay = backoff.hit()
                            self.bump("accept_errors")
                            if backoff.report_due():
                                self.emit(resource_notice(error, delay))
                            sel.unregister(sock)
                            listening = False
                        elif error is None:
                            backoff.ok()
                    else:
                        self._child_readable(key.data)
            if fork:
                self._stop_children(sel)
            else:
                self._stop_threads()

    def _accept_batch(self, sock: socket.socket, fork: bool) -> OSError | None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = sock.accept()
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    return exc
                continue
            peer = net.format_peer(addr)
            if self._open >= self.max_clients:
                self._reject(conn, peer)
                continue
            self._opened(peer)
            if fork:
                self._fork_one(conn, peer)
            else:
                self._thread_one(conn, peer)
        return None

    # -- thread mode -----------------------------------------------------------------
    def _thread_one(self, conn: socket.socket, peer: str) -> None:
        c = _Conn(conn, LineSession(peer, self.max_line, self._line_cb()))
        t = threading.Thread(target=self._thread_serve, args=(c,), name="netkit-conn", daemon=True)
        with self._lock:
            self._conns[conn.fileno()] = c
            self._threads.add(t)
        t.start()

    def _thread_serve(self, c: _Conn) -> None:
        reason = "reset"
        try:
            reason = serve_blocking(
                c.sock, c.session, self.idle_timeout, lambda: self._stopping, c.idle
            )
        finally:
            with self._lock:
                self._conns.pop(c.sock.fileno(), None)
            _close(c.sock)
            self._closed(c.session.peer, c.session.lines, c.session.duration(), reason)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _stop_threads(self) -> None:
        self._stopping = True

        def shut(only_idle: bool) -> None:
            with self._lock:
                conns = list(self._conns.values())
            for c in conns:
                if only_idle and not (c.idle[0] and c.session.idle):
                    continue
                try:
                    c.sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass

        shut(only_idle=True)
        deadline = time.monotonic() + self.grace
        for t in list(self._threads):
            t.join(max(deadline - time.monotonic(), 0))
        shut(only_idle=False)
        deadline = time.monotonic() + 1.0
        for t in list(self._threads):
            t.join(max(deadline - time.monotonic(), 0))

    # -- fork mode -----------------------------------------------------------------
    def _spawn(self, target: Callable[[int], None], peer: str, worker: bool, keep: int) -> int:
        r, w = os.pipe()
        parent = os.getpid()
        # SIGTERM stays blocked in the child until its own handler is in place:
        # one that came earlier would run the parent's handler, inherited with
        # the fork, and the child would serve on until killed after --grace
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(r)
            os.close(w)
            raise
        if pid == 0:  # child
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                # a parent killed outright (SIGKILL) must not leave children
                # serving, or prefork workers holding the port: SIGTERM them
                if self._death_signal is not None:
                    self._death_signal(signal.SIGTERM)
                if os.getppid() != parent:  # it died before that call
                    raise _ChildStop
                # keep stdin/out/err, the socket it serves and its report pipe:
                # any other descriptor (another client's socket in a library
                # user's process, the parent's pipes) would outlive its owner
                _close_fds_except(sorted({keep, w}))
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides (Ctrl-C)
                target(w)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(w)
        os.set_blocking(r, False)
        child = _Child(pid, r, peer, worker)
        self._children[r] = child
        self._sel.register(r, selectors.EVENT_READ, child)
        return pid

    def _fork_one(self, conn: socket.socket, peer: str) -> None:

        def child_main(w: int) -> None:
            self._child_serve(conn, peer, w)

        try:
            self._spawn(child_main, peer, worker=False, keep=conn.fileno())
        except OSError as exc:  # EAGAIN / ENOMEM / EMFILE: no process for this client
            self.bump("fork_errors")
            if self._reports.due("fork"):
                self.emit(Notice("warning", net.describe_error(exc, f"fork for {peer}")))
            self._reject(conn, peer)
            with self._lock:
                self._open -= 1
            return
        finally:
            conn.close()

    @staticmethod
    def _install_child_stop(idle: list[bool], stopping: list[bool]) -> None:
        def on_term(_signum: int, _frame: object) -> None:
            stopping[0] = True
            if idle[0]:
                raise _ChildStop

        signal.signal(signal.SIGTERM, on_term)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by _spawn

    def _child_serve(self, conn: socket.socket, peer: str, w: int) -> None:
        idle = [False]
        stopping = [False]
        self._install_child_stop(idle, stopping)

        def on_line(_peer: str, line: bytes) -> None:
            os.write(w, _frame(b"L", line))

        session = LineSession(peer, self.max_line, None if self.quiet else on_line)
        reason = "server stopping"
        try:
            reason = serve_blocking(conn, session, self.idle_timeout, lambda: stopping[0], idle)
        except _ChildStop:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _close(conn)
            body = f"{session.lines} {session.duration()} {reason}".encode()
            os.write(w, _frame(b"E", body))

    def _child_readable(self, child: _Child) -> None:
        try:
            data = os.read(child.fd, 65_536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            child.buf += data
            self._child_frames(child)
            return
        # EOF: every copy of the write end is closed, so the child is exiting:
        # reap it now (a brief wait at most), then report its session
        self._sel.unregister(child.fd)
        os.close(child.fd)
        del self._children[child.fd]
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
        # a child that died without reporting: killed after --grace, or crashed
        lost = "server stopping" if self._stopping else "reset"
        if not child.worker:
            lines, dur, reason = child.end or (0, 0.0, lost)
            self._closed(child.peer, lines, dur, reason)
        elif child.peer:  # a worker that died in the middle of a connection
            self._closed(child.peer, 0, 0.0, lost)
        if child.worker and not self._stopping and not self.stop_requested:
            self.emit(Notice("warning", f"prefork worker {child.pid} exited; starting another"))
            self._start_worker()

    def _child_frames(self, child: _Child) -> None:
        buf = child.buf
        while len(buf) >= _HDR.size:
            size, kind = _HDR.unpack_from(buf)
            if len(buf) < _HDR.size + size:
                break
            body = buf[_HDR.size : _HDR.size + size]
            buf = buf[_HDR.size + size :]
            if kind == ord("L"):
                if not self.quiet:
                    self.emit(LineEvent(child.peer, body, len(body)))
            elif kind == ord("C"):
                child.peer = body.decode()
                self._opened(child.peer)
            elif kind == ord("E"):
                n, dur, reason = body.decode().split(" ", 2)
                if child.worker:
                    peer, child.peer = child.peer, ""
                    self._closed(peer, int(n), float(dur), reason)
                else:
                    child.end = (int(n), float(dur), reason)
            elif kind == ord("N"):
                # workers' warnings: one a second in all, however many workers
                if self._reports.due("worker"):
                    self.emit(Notice("warning", body.decode(errors="replace")))
        child.buf = buf

    def _stop_children(self, sel: selectors.BaseSelector) -> None:
        self._stopping = True
        for child in list(self._children.values()):
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace
        killed = False
        hard_deadline = deadline + 2.0
        while self._children and time.monotonic() < hard_deadline:
            now = time.monotonic()
            if now >= deadline and not killed:
                killed = True
                for child in list(self._children.values()):
                    try:
                        os.kill(child.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            wait = max((deadline if not killed else hard_deadline) - now, 0.01)
            for key, _ev in sel.select(wait):
                if isinstance(key.data, _Child):
                    self._child_readable(key.data)
                elif key.fileobj == self._wake_r:
                    self.drain_wake()
        for pid in [c.pid for c in self._children.values()]:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for fd in list(self._children):
            os.close(fd)
        self._children.clear()

    # -- prefork -----------------------------------------------------------------
    def _start_worker(self) -> None:
        listen = self._sock
        assert listen is not None

        def worker_main(w: int) -> None:
            self._worker_loop(listen, w)

        try:
            self._spawn(worker_main, "", worker=True, keep=listen.fileno())
        except OSError as exc:
            self.emit(Notice("warning", net.describe_error(exc, "fork a prefork worker")))

    def _worker_loop(self, listen: socket.socket, w: int) -> None:
        idle = [True]
        stopping = [False]
        self._install_child_stop(idle, stopping)
        backoff = Backoff()

        def on_line(_peer: str, line: bytes) -> None:
            os.write(w, _frame(b"L", line))

        cb = None if self.quiet else on_line
        try:
            while not stopping[0]:
                idle[0] = True
                try:
                    conn, addr = listen.accept()
                except BlockingIOError:
                    continue  # another worker took it
                except OSError as exc:
                    if exc.errno in RESOURCE_ERRNOS:
                        delay = backoff.hit()
                        if backoff.report_due():
                            message = resource_notice(exc, delay).message
                            os.write(w, _frame(b"N", message.encode()))
                        time.sleep(delay)  # back-off in a worker, not a busy loop
                    continue
                finally:
                    idle[0] = False
                backoff.ok()
                peer = net.format_peer(addr)
                os.write(w, _frame(b"C", peer.encode()))
                session = LineSession(peer, self.max_line, cb)
                reason = "server stopping"
                try:
                    reason = serve_blocking(
                        conn, session, self.idle_timeout, lambda: stopping[0], idle
                    )
                except _ChildStop:
                    stopping[0] = True
                finally:
                    _close(conn)
                    body = f"{session.lines} {session.duration()} {reason}".encode()
                    os.write(w, _frame(b"E", body))
        except _ChildStop:
            pass

    def _run_prefork(self) -> None:
        sock = self._sock
        assert sock is not None
        sock.setblocking(True)  # workers block in accept(); the parent never accepts
        with selectors.DefaultSelector() as sel:
            self._sel = sel
            sel.register(self._wake_r, selectors.EVENT_READ, None)
            for _ in range(self.prefork):
                self._start_worker()
            while not self.stop_requested:
                ready = sel.select()
                for key, _ev in ready:
                    if key.fileobj == self._wake_r:
                        self.drain_wake()
                    else:
                        self._child_readable(key.data)
            self._stop_children(sel)

    # -- sync mode -------------------------------------------------------------------
    def _run_sync(self) -> None:
        sock = self._sock
        assert sock is not None
        waiting: collections.deque[tuple[socket.socket, str]] = collections.deque()
        active: socket.socket | None = None
        session: LineSession | None = None
        last = 0.0
        backoff = Backoff()
        cb = self._line_cb()

        def finish(reason: str) -> None:
            nonlocal active, session
            assert active is not None and session is not None
            sel.unregister(active)
            _close(active)
            self._closed(session.peer, session.lines, session.duration(), reason)
            active, session = None, None

        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(sock, selectors.EVENT_READ)
            listening = True
            while not self.stop_requested:
                if active is None and waiting:
                    active, peer = waiting.popleft()
                    session = LineSession(peer, self.max_line, cb)
                    last = time.monotonic()
                    active.setblocking(True)
                    set_io_timeouts(active, self.idle_timeout)
                    sel.register(active, selectors.EVENT_READ)
                    self._opened(peer)
                want = len(waiting) < self.max_clients
                if want and not listening and not backoff.active:
                    sel.register(sock, selectors.EVENT_READ)
                    listening = True
                elif not want and listening:
                    sel.unregister(sock)
                    listening = False
                timeout: float | None = None
                if active is not None:
                    timeout = max(last + self.idle_timeout - time.monotonic(), 0)
                if not listening and want:
                    rem = backoff.remaining()
                    timeout = rem if timeout is None else min(timeout, rem)
                ready = sel.select(timeout)
                if not ready and active is not None:
                    if time.monotonic() - last >= self.idle_timeout:
                        finish("idle timeout")
                    continue
                for key, _ev in ready:
                    if key.fileobj == self._wake_r:
                        self.drain_wake()
                    elif key.fileobj is sock:
                        error = self._sync_accept(sock, waiting, session)
                        if error is None:
                            backoff.ok()
                        else:
                            delay = backoff.hit()
                            self.bump("accept_errors")
                            if backoff.report_due():
                                self.emit(resource_notice(error, delay))
                            sel.unregister(sock)
                            listening = False
                    elif active is not None and session is not None:
                        last = time.monotonic()
                        try:
                            data = active.recv(RECV_SIZE)
                        except BlockingIOError:
                            continue
                        except OSError:
                            finish("reset")
                            continue
                        if not data:
                            finish("eof")
                            continue
                        reply, end = session.receive(data)
                        if reply:
                            try:
                                active.sendall(reply)
                            except OSError:
                                end = "reset"
                        if end == "line too long":
                            drain(active)
                        if end is not None:
                            finish(end)
                if self.stop_requested:
                    break
            if active is not None:
                finish("server stopping")
            for conn, _peer in waiting:
                _close(conn)
            if waiting:
                self.bump("closed_waiting", len(waiting))

    def _sync_accept(
        self,
        sock: socket.socket,
        waiting: collections.deque[tuple[socket.socket, str]],
        session: LineSession | None,
    ) -> OSError | None:
        for _ in range(ACCEPT_BATCH):
            if len(waiting) >= self.max_clients:
                return None
            try:
                conn, addr = sock.accept()
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    return exc
                continue
            peer = net.format_peer(addr)
            waiting.append((conn, peer))
            if session is not None or len(waiting) > 1:
                # the client served now, or the one first in line to be
                serving = session.peer if session is not None else waiting[0][1]
                if not self.quiet:
                    self.emit(ClientWaiting(peer, len(waiting), serving))
        return None

    # -- async mode -------------------------------------------------------------------
    def _new_loop(self) -> Any:
        import asyncio

        if self.loop_name in ("auto", "uvloop"):
            try:
                import uvloop
            except ImportError:
                if self.loop_name == "uvloop":
                    raise net.UsageError(
                        "--loop uvloop: uvloop is not installed (pip install 'netkit-cli[fast]')"
                    ) from None
            else:
                self.loop_used = "uvloop"
                return uvloop.new_event_loop()
        self.loop_used = "asyncio"
        return asyncio.new_event_loop()

    def _async_main(self, ready: threading.Event) -> None:
        try:
            loop = self._new_loop()
        except net.UsageError as exc:
            self.fail(str(exc))
            ready.set()
            return
        try:
            loop.run_until_complete(self._async_serve(loop, ready))
        except Exception as exc:
            self.fail(f"event loop failed: {exc}")
            ready.set()
        finally:
            loop.close()

    async def _async_serve(self, loop: Any, ready: threading.Event) -> None:
        import asyncio

        from netkit.services._upper_async import make_protocol

        sock = self._sock
        assert sock is not None
        stop = loop.create_future()
        conns: set[Any] = set()

        def request() -> None:
            if not stop.done():
                stop.set_result(None)

        def request_threadsafe() -> None:
            try:
                loop.call_soon_threadsafe(request)
            except RuntimeError:
                pass  # the loop has already finished

        self._async_stop = request_threadsafe
        all_closed = asyncio.Event()
        self._async_all_closed = all_closed.set

        last_notice = [-1e9]

        def on_exception(_loop: Any, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
                # asyncio pauses accepting for 1 s itself; log at most once a second
                # (uvloop, through libuv, accepts and closes the extra connection
                # instead and reports nothing: the default --max-clients stays
                # below the descriptor limit so clients get the busy reply first)
                self.bump("accept_errors")
                if loop.time() - last_notice[0] >= 1.0:
                    last_notice[0] = loop.time()
                    self.emit(resource_notice(exc, 1.0))
                return
            message = context.get("message", "event loop error")
            self.emit(Notice("warning", f"{message}: {exc!r}" if exc else str(message)))

        loop.set_exception_handler(on_exception)
        protocol = make_protocol(self, loop, conns)
        server = await loop.create_server(protocol, sock=sock, backlog=1024)
        ready.set()
        if self.stop_requested:
            request()
        await stop
        self._stopping = True
        server.close()
        for p in list(conns):
            p.shutdown(graceful=True)
        if conns:
            try:
                await asyncio.wait_for(all_closed.wait(), self.grace)
            except TimeoutError:
                for p in list(conns):
                    p.shutdown(graceful=False)
        if conns:
            try:
                await asyncio.wait_for(all_closed.wait(), 1.0)
            except TimeoutError:
                pass

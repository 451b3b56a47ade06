"""``--mode fork``: a process per connection (``socketserver.ForkingMixIn``), or prefork.

The server's loop accepts and forks; the child serves the connection on a
blocking socket and exits.  With ``--prefork N``, N worker processes made
at start each accept and serve, and one that dies is replaced.  Children
report to the parent over a pipe each (lines for the log, counts for the
summary); the parent reaps a child as soon as its pipe closes.

Frames on a child's pipe: a 4-byte length, a 1-byte kind, the body:
``C`` peer (a prefork worker accepted), ``L`` line, ``E`` "lines duration
reason" (a connection ended), ``N`` a warning.
"""

from __future__ import annotations

import _socket
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netkit import net
from netkit.events import Notice
from netkit.events.upper_server import LineEvent
from netkit.protocols.ratelimit import ReportLimit
from netkit.services.loops import RESOURCE_ERRNOS, Backoff, Loop, resource_notice
from netkit.services.modes import _forker
from netkit.services.modes.base import Mode, close_quietly, since

_HDR = struct.Struct("!IB")
_PID = struct.Struct("!I")


def frame(kind: bytes, body: bytes) -> bytes:
    return _HDR.pack(len(body), kind[0]) + body


def close_fds_except(keep: list[int]) -> None:
    """In a forked child: close every descriptor from 3 up except *keep* (sorted)."""
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)


def parent_death_signal() -> Callable[[int], None] | None:
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


class _Child:
    __slots__ = ("buf", "end", "fd", "lines", "peer", "pid", "worker")

    def __init__(self, pid: int, fd: int, peer: str, worker: bool) -> None:
        self.pid = pid
        self.fd = fd
        self.peer = peer
        self.worker = worker
        self.buf = b""
        self.lines = 0  # lines it logged: its count if it is killed before it reports
        self.end: tuple[int, float, str] | None = None


class ChildStop(BaseException):
    """Raised by a child's SIGTERM handler while it waits idle: exit now."""


def install_child_stop(idle: list[bool], stopping: list[bool]) -> None:
    def on_term(_signum: int, _frame: object) -> None:
        stopping[0] = True
        if idle[0]:
            raise ChildStop

    signal.signal(signal.SIGTERM, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by spawn()


class ProcessMode(Mode):
    """Processes forked from the server's own process, a report pipe each
    (prefork's workers).

    May be overridden: :meth:`spawn` (how a process is made),
    :meth:`child_gone` (what its end means) and :meth:`stop` (how they are
    ended: SIGTERM, SIGKILL after ``--grace``).
    """

    name = "fork"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.children: dict[int, _Child] = {}  # by pipe fd
        #: children whose pipe closed, not reaped yet: pid -> (child, pidfd or -1)
        self.exiting: dict[int, tuple[_Child, int]] = {}
        self.reports = ReportLimit()
        self.death_signal = parent_death_signal()

    # -- making children -----------------------------------------------------------
    def spawn(self, target: Callable[[int], None], peer: str, worker: bool, keep: int) -> int:
        """Fork a child that runs ``target(report_fd)`` and exits; return its pid."""
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
                if self.death_signal is not None:
                    self.death_signal(signal.SIGTERM)
                if os.getppid() != parent:  # it died before that call
                    raise ChildStop
                # keep stdin/out/err, the socket it serves and its report pipe:
                # any other descriptor (another client's socket in a library
                # user's process, the parent's pipes) would outlive its owner
                close_fds_except(sorted({keep, w}))
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
        self.children[r] = child
        assert self.loop is not None
        self.loop.add(r, lambda: self.child_readable(child))
        return pid

    # -- what children say ----------------------------------------------------------
    def child_readable(self, child: _Child) -> None:
        try:
            data = os.read(child.fd, 65_536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            child.buf += data
            self.child_frames(child)
            return
        # EOF: every copy of the write end is closed, so the child is exiting;
        # its session is reported once it is reaped (no zombie outlives the
        # report), without waiting for it here: an exit takes a while
        assert self.loop is not None
        self.loop.remove(child.fd)
        os.close(child.fd)
        del self.children[child.fd]
        self.reap(child)

    def reap(self, child: _Child) -> None:
        """Collect an exiting child, then report it; watched through a pidfd
        (Linux) or looked at again after a moment while it is still exiting."""
        try:
            done, _status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            done = child.pid
        if done:
            self.exiting.pop(child.pid, None)
            self.child_gone(child)
            return
        loop = self.loop
        assert loop is not None
        if child.pid in self.exiting:  # no pidfd: polled
            loop.call_at(time.monotonic() + 0.005, lambda: self.reap(child))
            return
        try:
            pidfd = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            self.exiting[child.pid] = (child, -1)
            loop.call_at(time.monotonic() + 0.005, lambda: self.reap(child))
            return
        self.exiting[child.pid] = (child, pidfd)

        def exited() -> None:
            loop.remove(pidfd)
            os.close(pidfd)
            del self.exiting[child.pid]
            self.reap(child)

        loop.add(pidfd, exited)

    def child_gone(self, child: _Child) -> None:
        """A child was reaped: nothing by default."""

    def child_frames(self, child: _Child) -> None:
        server = self.server
        buf = child.buf
        hdr = _HDR.size
        # frames are read where they lie, and what is left copied once: slicing
        # the rest off after each frame would copy a full pipe's worth per frame
        at = 0
        while len(buf) - at >= hdr:
            size, kind = _HDR.unpack_from(buf, at)
            if len(buf) - at < hdr + size:
                break
            body = buf[at + hdr : at + hdr + size]
            at += hdr + size
            if kind == ord("L"):
                child.lines += 1
                if not server.quiet:
                    server.emit(LineEvent(child.peer, body, len(body)))
            elif kind == ord("C"):
                child.peer = body.decode()
                server.opened(child.peer, f"pid {child.pid}")
            elif kind == ord("E"):
                n, dur, reason = body.decode().split(" ", 2)
                if child.worker:
                    peer, child.peer = child.peer, ""
                    server.closed(peer, int(n), float(dur), reason)
                else:
                    child.end = (int(n), float(dur), reason)
            elif kind == ord("N"):
                # workers' warnings: one a second in all, however many workers
                if self.reports.due(time.monotonic(), "worker"):
                    server.emit(Notice("warning", body.decode(errors="replace")))
        child.buf = buf[at:] if at else buf

    # -- stopping ---------------------------------------------------------------------
    def _signal_all(self, sig: int) -> None:
        for child in list(self.children.values()):
            try:
                os.kill(child.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        server = self.server
        loop = self.loop
        assert loop is not None
        server.stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + server.grace
        hard_deadline = deadline + 2.0
        killed = False
        while (self.children or self.exiting) and time.monotonic() < hard_deadline:
            now = time.monotonic()
            if server.forced:  # a second Ctrl-C: no more grace (the waker woke us)
                deadline = min(deadline, now)
            if now >= deadline and not killed:
                killed = True
                self._signal_all(signal.SIGKILL)
            wait = max((deadline if not killed else hard_deadline) - now, 0.01)
            for key, _ev in loop.selector.select(wait):
                key.data()
        for child in list(self.children.values()):
            try:
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for fd in list(self.children):
            os.close(fd)
        self.children.clear()
        for pid, (child, pidfd) in list(self.exiting.items()):  # on their way out
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            if pidfd >= 0:
                os.close(pidfd)
            self.child_gone(child)
        self.exiting.clear()


class _Conn:
    """A connection a child of the forker serves, as the server knows it."""

    __slots__ = ("end", "lines", "peer")

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.lines = 0  # lines it logged: its count if it is killed before it reports
        self.end: tuple[int, float, str] | None = None


class ForkMode(Mode):
    """A process per connection, forked by a small process of its own.

    :meth:`prepare` starts :mod:`netkit.services.modes._forker` with the
    listening socket and one end of a ``SOCK_SEQPACKET`` socket pair; it
    accepts, forks a child per connection (up to ``--max-clients``; the
    next ones are turned away) and reaps them.  This process only reads
    their reports (:meth:`report`) and emits the events; :meth:`stop` asks
    the forker to stop (SIGTERM to the children), then to kill what is left
    after ``--grace`` (at once after a second Ctrl-C).

    May be overridden: :meth:`forker_argv` (the command that starts the
    forker), :meth:`report` (what a message means) and :meth:`stop`.
    """

    name = "fork"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.forker: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None  # this side of the report socket
        self.conns: dict[int, _Conn] = {}  # by child pid
        #: what a child said before the forker's C for it came: pid -> messages
        self.early: dict[int, list[bytes]] = {}
        self.reports = ReportLimit()
        self.eof = False
        self._pidfd = -1

    @classmethod
    def create(cls, server: Any) -> Mode:
        return PreforkMode(server) if server.prefork else cls(server)

    def forker_argv(self, listen_fd: int, report_fd: int) -> list[str]:
        server = self.server
        return [
            sys.executable,
            *_forker.argv(
                listen_fd,
                report_fd,
                max_clients=server.max_clients,
                max_line=server.max_line,
                plain=server.plain,
                quiet=server.quiet,
                idle_timeout=server.idle_timeout,
                line_timeout=server.line_timeout,
                timeouts_set=self.timeouts_preset,
            ),
        ]

    def configure_listener(self, sock: socket.socket) -> None:
        # no setsockopt per child (the forker's accept() does not block: the
        # recv timeout does not touch it)
        self.preset_timeouts(sock)

    def prepare(self) -> None:
        listen_fd = self.server.listener.fileno()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # -S: no site-packages; netkit is found where this process found it
        root = str(Path(_forker.__file__).resolve().parents[3])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
        try:
            self.forker = subprocess.Popen(
                self.forker_argv(listen_fd, theirs.fileno()),
                stdin=subprocess.DEVNULL,
                pass_fds=(listen_fd, theirs.fileno()),
                env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours

    def run(self) -> None:
        server = self.server
        loop = self.loop = Loop(server)
        assert self.sock is not None and self.forker is not None
        try:
            loop.add(self.sock, self.readable)
            try:
                self._pidfd = os.pidfd_open(self.forker.pid)
            except (AttributeError, OSError):  # pragma: no cover - not Linux 5.3+
                self._poll_forker()
            else:
                loop.add(self._pidfd, self._forker_exited)
            loop.run()
            self.stop()
        finally:
            self._close()
            loop.close()

    def _poll_forker(self) -> None:
        assert self.loop is not None
        if self.forker is not None and self.forker.poll() is not None:
            self._forker_exited()
        else:
            self.loop.call_at(time.monotonic() + 0.5, self._poll_forker)

    def _forker_exited(self) -> None:
        assert self.loop is not None
        if self._pidfd >= 0:
            self.loop.remove(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if not self.server.stopping:
            code = self.forker.wait() if self.forker is not None else None
            self.server.fail(f"the forking process exited (status {code})")

    # -- what the forker and its children say ---------------------------------------
    def readable(self) -> None:
        assert self.sock is not None
        recv = self.sock.recv
        for _ in range(256):
            try:
                message = recv(1 << 18)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:  # the forker and every child are gone
                self.eof = True
                assert self.loop is not None
                self.loop.remove(self.sock)
                return
            self.report(message)

    def report(self, message: bytes) -> None:
        server = self.server
        kind = message[:1]
        if kind in b"CLEX":
            (pid,) = _PID.unpack_from(message, 1)
            body = message[5:]
            if kind == b"C":
                peer = body.decode()
                self.conns[pid] = _Conn(peer)
                server.opened(peer, f"pid {pid}")
                for early in self.early.pop(pid, ()):
                    self.report(early)
                return
            conn = self.conns.get(pid)
            if conn is None:
                # the child spoke before the forker reported it (the forker's
                # X for it always comes after its C: one writer, in order)
                if kind != b"X":
                    self.early.setdefault(pid, []).append(message)
                return
            if kind == b"L":
                at = 0
                while at < len(body):
                    (size,) = _PID.unpack_from(body, at)
                    line = body[at + 4 : at + 4 + size]
                    at += 4 + size
                    conn.lines += 1
                    if not server.quiet:
                        server.emit(LineEvent(conn.peer, line, size))
            elif kind == b"E":
                n, dur, reason = body.decode().split(" ", 2)
                conn.end = (int(n), float(dur), reason)
            else:  # X: reaped, so reported now (no zombie outlives the report)
                del self.conns[pid]
                self._gone(conn)
        elif kind == b"R":
            server.turned_away(message[1:].decode())
        elif kind == b"F":
            (code,) = _PID.unpack_from(message, 1)
            peer = message[5:].decode()
            server.bump("fork_errors")
            if self.reports.due(time.monotonic(), "fork"):
                exc = OSError(code, os.strerror(code))
                server.emit(Notice("warning", net.describe_error(exc, f"fork for {peer}")))
            server.turned_away(peer)
        elif kind == b"A":
            (code,) = _PID.unpack_from(message, 1)
            server.bump("accept_errors")
            if self.reports.due(time.monotonic(), "accept"):
                exc = OSError(code, os.strerror(code))
                server.emit(resource_notice(exc, float(message[5:])))

    def _gone(self, conn: _Conn) -> None:
        server = self.server
        # a child that died without reporting: killed after --grace, or crashed
        lost = "server stopping" if server.stopping else "reset"
        lines, dur, reason = conn.end or (conn.lines, 0.0, lost)
        server.closed(conn.peer, lines, dur, reason)

    # -- stopping ---------------------------------------------------------------------
    def _tell(self, command: bytes) -> None:
        try:
            if self.sock is not None:
                self.sock.send(command)
        except OSError:
            pass  # gone already

    def stop(self) -> None:
        server = self.server
        loop = self.loop
        assert loop is not None
        server.stopping = True
        self._tell(_forker.STOP)
        deadline = time.monotonic() + server.grace
        hard_deadline = deadline + 2.0
        killed = False
        while not self.eof and time.monotonic() < hard_deadline:
            now = time.monotonic()
            if server.forced:  # a second Ctrl-C: no more grace (the waker woke us)
                deadline = min(deadline, now)
            if now >= deadline and not killed:
                killed = True
                self._tell(_forker.KILL)
            wait = max((deadline if not killed else hard_deadline) - now, 0.01)
            for key, _ev in loop.selector.select(wait):
                key.data()

    def _close(self) -> None:
        forker = self.forker
        if forker is not None and forker.poll() is None:
            # past every deadline: the forker first (its children are not
            # reaped, so their pids are still theirs), then what it left
            for pid in self.conns:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            forker.kill()
        if forker is not None:
            forker.wait()
        for conn in self.conns.values():
            self._gone(conn)
        self.conns.clear()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        if self.sock is not None:
            self.sock.close()


class PreforkMode(ProcessMode):
    """``--prefork N``: N workers that each accept and serve, replaced when one dies.

    The parent never accepts: its loop only reads the workers' reports.
    May be overridden: :meth:`worker` (a worker's accept-and-serve loop).
    """

    def run(self) -> None:
        server = self.server
        server.listener.setblocking(True)  # workers block in accept()
        loop = self.loop = Loop(server)
        try:
            for _ in range(server.prefork):
                self.start_worker()
            loop.run()
            self.stop()
        finally:
            loop.close()

    def configure_listener(self, sock: socket.socket) -> None:
        # no setsockopt per connection (a worker's blocking accept() then
        # returns EAGAIN once per idle timeout without a client: it goes on)
        self.preset_timeouts(sock)

    def start_worker(self) -> None:
        listen = self.server.listener
        try:
            self.spawn(lambda w: self.worker(listen, w), "", True, listen.fileno())
        except OSError as exc:
            self.server.emit(Notice("warning", net.describe_error(exc, "fork a prefork worker")))

    def child_gone(self, child: _Child) -> None:
        server = self.server
        if child.peer:  # a worker that died in the middle of a connection
            server.closed(child.peer, 0, 0.0, "server stopping" if server.stopping else "reset")
        if not server.stopping and not server.stop_requested:
            server.emit(Notice("warning", f"prefork worker {child.pid} exited; starting another"))
            self.start_worker()

    def worker(self, listen: socket.socket, w: int) -> None:
        """In a worker: accept and serve one connection after another until SIGTERM."""
        server = self.server
        idle = [True]
        stopping = [False]
        install_child_stop(idle, stopping)
        backoff = Backoff()
        # socket.accept() without its Python wrapper: the C-level socket is
        # all serve_blocking needs (no enum conversions, no socket.socket init)
        accept = listen._accept  # type: ignore[attr-defined]  # (fd, addr)
        family = int(listen.family)

        def heard(lines: list[bytes]) -> None:
            os.write(w, b"".join(frame(b"L", line) for line in lines))

        try:
            while not stopping[0]:
                idle[0] = True
                try:
                    fd, addr = accept()
                except BlockingIOError:
                    continue  # another worker took it
                except OSError as exc:
                    if exc.errno in RESOURCE_ERRNOS:
                        delay = backoff.hit()
                        if backoff.report_due():
                            message = resource_notice(exc, delay).message
                            os.write(w, frame(b"N", message.encode()))
                        time.sleep(delay)  # back-off in a worker, not a busy loop
                    continue
                finally:
                    idle[0] = False
                backoff.ok()
                conn = _socket.socket(family, socket.SOCK_STREAM, 0, fd)
                started = time.monotonic()
                peer = net.format_peer(addr)
                os.write(w, frame(b"C", peer.encode()))
                session = server.new_session()
                reason = "server stopping"
                try:
                    reason = self.serve_blocking(conn, session, lambda: stopping[0], idle, heard)
                except ChildStop:
                    stopping[0] = True
                finally:
                    close_quietly(conn)
                    body = f"{session.lines} {since(started)} {reason}".encode()
                    os.write(w, frame(b"E", body))
        except ChildStop:
            pass

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

import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from netkit import net
from netkit.events import Notice
from netkit.events.upper_server import LineEvent
from netkit.protocols.ratelimit import ReportLimit
from netkit.services.loops import RESOURCE_ERRNOS, Backoff, Loop, resource_notice
from netkit.services.modes.base import Mode, close_quietly, since

_HDR = struct.Struct("!IB")


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


class ForkMode(Mode):
    """A process per connection.

    May be overridden: :meth:`child` (what a child does with its
    connection), :meth:`spawn` (how a child is made) and :meth:`stop` (how
    children are ended: SIGTERM, SIGKILL after ``--grace``).
    """

    name = "fork"

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.children: dict[int, _Child] = {}  # by pipe fd
        #: children whose pipe closed, not reaped yet: pid -> (child, pidfd or -1)
        self.exiting: dict[int, tuple[_Child, int]] = {}
        self.reports = ReportLimit()
        self.death_signal = parent_death_signal()

    @classmethod
    def create(cls, server: Any) -> Mode:
        return PreforkMode(server) if server.prefork else cls(server)

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

    def serve_connection(self, conn: socket.socket, peer: str) -> None:
        server = self.server
        try:
            pid = self.spawn(lambda w: self.child(conn, peer, w), peer, False, conn.fileno())
        except OSError as exc:  # EAGAIN / ENOMEM / EMFILE: no process for this client
            server.bump("fork_errors")
            if self.reports.due(time.monotonic(), "fork"):
                server.emit(Notice("warning", net.describe_error(exc, f"fork for {peer}")))
            server.reject(conn, peer)
        else:
            # before its report is read (on this thread's loop, later): counted in order
            server.opened(peer, f"pid {pid}")
        finally:
            conn.close()

    def child(self, conn: socket.socket, peer: str, w: int) -> None:
        """In the child: serve *conn*, report on *w*."""
        server = self.server
        started = time.monotonic()
        idle = [False]
        stopping = [False]
        install_child_stop(idle, stopping)

        def heard(lines: list[bytes]) -> None:
            os.write(w, b"".join(frame(b"L", line) for line in lines))

        session = server.new_session()
        reason = "server stopping"
        try:
            reason = self.serve_blocking(conn, session, lambda: stopping[0], idle, heard)
        except ChildStop:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            close_quietly(conn)
            os.write(w, frame(b"E", f"{session.lines} {since(started)} {reason}".encode()))

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
        server = self.server
        # a child that died without reporting: killed after --grace, or crashed
        lost = "server stopping" if server.stopping else "reset"
        lines, dur, reason = child.end or (child.lines, 0.0, lost)
        server.closed(child.peer, lines, dur, reason)

    def child_frames(self, child: _Child) -> None:
        server = self.server
        buf = child.buf
        while len(buf) >= _HDR.size:
            size, kind = _HDR.unpack_from(buf)
            if len(buf) < _HDR.size + size:
                break
            body = buf[_HDR.size : _HDR.size + size]
            buf = buf[_HDR.size + size :]
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
        child.buf = buf

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


class PreforkMode(ForkMode):
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

        def heard(lines: list[bytes]) -> None:
            os.write(w, b"".join(frame(b"L", line) for line in lines))

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
                            os.write(w, frame(b"N", message.encode()))
                        time.sleep(delay)  # back-off in a worker, not a busy loop
                    continue
                finally:
                    idle[0] = False
                backoff.ok()
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

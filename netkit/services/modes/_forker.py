"""The small process that accepts and forks for ``--mode fork``.

What a fork costs grows with the memory of the process that forks (its
page tables are copied, and every page either side writes to afterwards is
copied once more).  The server's own process is large and has threads, so
``--mode fork`` does not fork there: it starts this module
(``python -S -c "...; main()"``), which imports C modules of the standard
library (``posix``, ``_socket``, ``_signal``, ``select``, ``gc``, ``time``,
``_struct``) and the sans-IO session, and nothing else: not even ``os``,
``socket`` or ``typing``.  It accepts on the listening
socket the server hands it and forks a child per connection; each child
serves its connection (:func:`netkit.services.blocking.serve_blocking`)
and leaves with ``os._exit``.

Everything the server logs and counts is reported to it over one
``SOCK_SEQPACKET`` socket (one message per ``send``, so children and this
process share it without mixing their messages); the server emits the
events.  A child's messages come before its exit, and this process reports
the exit after reaping it, so the server sees them in order.

Messages (the first byte says which; ``pid`` is 4 bytes, network order):

child -> server
    ``C`` pid peer: connected;  ``L`` pid (4-byte length, line)...: lines
    heard;  ``E`` pid "lines duration reason": the session ended.
this process -> server
    ``X`` pid: a child was reaped;  ``R`` peer: turned away (max clients);
    ``F`` errno peer: no process for this client (turned away too);
    ``A`` errno "delay": accept() is out of a resource, paused for delay s.
server -> this process
    ``S``: stop accepting, SIGTERM the children, exit once they are reaped;
    ``K``: SIGKILL the children.  EOF (the server is gone): SIGTERM the
    children and exit.

Signals: SIGINT is ignored here and in the children (the server decides
what a Ctrl-C does); SIGTERM is ignored here and, in a child, ends the
session (at once when it waits for a line with nothing pending, else after
the line in progress).
"""

from __future__ import annotations

import gc
import posix
import select
import time
from _socket import SOCK_STREAM
from _socket import socket as Socket

from netkit.protocols.upper import BUSY_REPLY, EchoSession, UpperSession
from netkit.services.blocking import TurnAway, serve_blocking, since

TYPE_CHECKING = False  # not typing's: it is large
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
else:
    import _signal  # signal without its enums

import struct  # noqa: E402 - after the guard on purpose: the same tiny module either way

HEAD = struct.Struct("!cI")
LEN = struct.Struct("!I")
#: a message of lines stays well under the socket's send buffer
LINES_CHUNK = 32_768
ACCEPT_BATCH = 64
RESOURCE_ERRNOS = frozenset({24, 23, 105, 12})  # EMFILE ENFILE ENOBUFS ENOMEM (Linux)
STOP = b"S"
KILL = b"K"
SIGTERM = int(_signal.SIGTERM)
SIGKILL = int(_signal.SIGKILL)
WNOHANG = posix.WNOHANG


class ChildStop(BaseException):
    """Raised by a child's SIGTERM handler while it waits idle: exit now."""


class Config:
    """What the server passes on the command line (see :func:`argv`)."""

    __slots__ = (
        "death_signal",
        "idle_timeout",
        "line_timeout",
        "listen_fd",
        "max_clients",
        "max_line",
        "plain",
        "quiet",
        "report_fd",
        "timeouts_set",
    )

    def __init__(self, args: list[str]) -> None:
        self.listen_fd = int(args[0])
        self.report_fd = int(args[1])
        self.max_clients = int(args[2])
        self.max_line = int(args[3])
        self.plain = args[4] == "1"
        self.quiet = args[5] == "1"
        self.idle_timeout = float(args[6])
        self.line_timeout = float(args[7])
        self.death_signal = args[8] == "1"
        #: the listener carries the idle timeout for the sockets it accepts
        self.timeouts_set = args[9] == "1"


#: how the server starts this module: -S (no site), -c (no runpy)
BOOT = "from netkit.services.modes._forker import main; main()"


def argv(
    listen_fd: int,
    report_fd: int,
    *,
    max_clients: int,
    max_line: int,
    plain: bool,
    quiet: bool,
    idle_timeout: float,
    line_timeout: float,
    death_signal: bool = True,
    timeouts_set: bool = False,
) -> list[str]:
    """The command line that starts this process (after the interpreter)."""
    flags = [str(int(plain)), str(int(quiet))]
    return [
        "-S",
        "-c",
        BOOT,
        str(listen_fd),
        str(report_fd),
        str(max_clients),
        str(max_line),
        *flags,
        repr(idle_timeout),
        repr(line_timeout),
        str(int(death_signal)),
        str(int(timeouts_set)),
    ]


def format_peer(addr: tuple[object, ...]) -> str:
    """As ``netkit.net.format_peer`` (not imported: this process stays small):
    an IPv4 client of a dual-stack socket is shown as the IPv4 address it is."""
    host, port = str(addr[0]), addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parent_death_signal() -> Callable[[int], object] | None:
    """Linux: prctl(PR_SET_PDEATHSIG) for the children, or None."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return None
    return lambda sig: prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG


class Forker:
    """The accept-and-fork loop; :meth:`child` is what each child runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.pid = posix.getpid()
        self.listener = Socket(fileno=config.listen_fd)
        self.listener.setblocking(False)
        self.family = self.listener.family
        self.report = Socket(fileno=config.report_fd)
        self.send = self.report.send
        self.live: set[int] = set()
        self.accepting = True
        self.stopping = False
        self.paused_until = 0.0
        self.delay = 0.0
        self.session: type[UpperSession] = EchoSession if config.plain else UpperSession
        # a child's state, read by the SIGTERM handler the children inherit
        self.idle = [False]
        self.child_stopping = [False]
        self.death = parent_death_signal() if config.death_signal else None
        #: clients turned away, read until they close
        self.turn_away = TurnAway(BUSY_REPLY)
        self.wake_r, wake_w = posix.pipe()
        posix.set_blocking(self.wake_r, False)
        posix.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, self.on_child)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        _signal.signal(SIGTERM, self.on_term)

    # -- signals -------------------------------------------------------------------
    def on_child(self, _signum: int, _frame: object) -> None:
        """Only there so that SIGCHLD writes to the wake-up pipe."""

    def on_term(self, _signum: int, _frame: object) -> None:
        if posix.getpid() == self.pid:
            return  # this process: the server decides (it sends S)
        self.child_stopping[0] = True
        if self.idle[0]:
            raise ChildStop

    # -- the loop ----------------------------------------------------------------
    def run(self) -> None:
        if FREEZE:
            # what is there now stays as it is: no collection touches (and so
            # copies) these objects' pages again, here or in a child
            gc.freeze()
        listen_fd = self.config.listen_fd
        report_fd = self.config.report_fd
        wake_r = self.wake_r
        while not (self.stopping and not self.live):
            fds = [report_fd, wake_r]
            timeout = None
            if self.accepting:
                wait = self.paused_until - time.monotonic() if self.paused_until else 0.0
                if wait <= 0:
                    self.paused_until = 0.0
                    fds.append(listen_fd)
                else:
                    timeout = wait
            turn_away = self.turn_away
            due = turn_away.next_due()  # (None: none turned away)
            if due is not None:
                fds += turn_away.fds
                wait = max(due - time.monotonic(), 0.0)
                timeout = wait if timeout is None else min(timeout, wait)
            ready = select.select(fds, [], [], timeout)[0]
            if due is not None:
                for fd in ready:
                    if fd in turn_away.fds:
                        turn_away.readable(fd)
                turn_away.expire(time.monotonic())
            if wake_r in ready:
                try:
                    while posix.read(wake_r, 4096):
                        pass
                except OSError:
                    pass
                self.reap()
            if report_fd in ready:
                self.command()
            if listen_fd in ready and self.accepting:
                self.accept()

    def command(self) -> None:
        try:
            cmd = self.report.recv(16)
        except BlockingIOError:
            return
        except OSError:
            cmd = b""
        if cmd == KILL:
            self.signal_all(SIGKILL)
            return
        self.stop_accepting()
        self.signal_all(SIGTERM)
        if not cmd:  # the server is gone: nobody to report to
            posix._exit(0)

    def stop_accepting(self) -> None:
        self.stopping = True
        if self.accepting:
            self.accepting = False
            self.listener.close()

    def signal_all(self, sig: int) -> None:
        for pid in self.live:
            try:
                posix.kill(pid, sig)
            except ProcessLookupError:
                pass

    def reap(self) -> None:
        live = self.live
        while live:
            try:
                pid, _status = posix.waitpid(-1, WNOHANG)
            except ChildProcessError:
                live.clear()
                return
            if not pid:
                return
            live.discard(pid)
            self.send(HEAD.pack(b"X", pid))

    def accept(self) -> None:
        accept = self.listener._accept  # type: ignore[attr-defined]  # (fd, addr)
        live = self.live
        fork = posix.fork
        send = self.send
        for _ in range(ACCEPT_BATCH):
            try:
                fd, addr = accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    self.delay = 0.05 if not self.delay else min(self.delay * 2, 1.0)
                    self.paused_until = time.monotonic() + self.delay
                    send(HEAD.pack(b"A", exc.errno or 0) + repr(self.delay).encode())
                    return
                continue  # ECONNABORTED and the like: that client is gone
            if len(live) >= self.config.max_clients:
                self.turn_away_client(fd, b"R" + format_peer(addr).encode())
                continue
            try:
                pid = fork()
            except OSError as exc:
                body = LEN.pack(exc.errno or 0) + format_peer(addr).encode()
                self.turn_away_client(fd, b"F" + body)
                continue
            if pid == 0:
                self.child(fd)  # does not return
            posix.close(fd)
            live.add(pid)
            send(HEAD.pack(b"C", pid) + format_peer(addr).encode())
        self.delay = 0.0

    def turn_away_client(self, fd: int, message: bytes) -> None:
        """The busy reply, then the client read until it closes (:class:`TurnAway`)."""
        self.turn_away.start(Socket(fileno=fd), time.monotonic())
        self.send(message)

    # -- in a child ----------------------------------------------------------------
    def child(self, fd: int) -> None:
        code = 0
        try:
            started = time.monotonic()
            self.listener.close()
            self.turn_away.forget()
            if self.death is not None:
                # this process killed outright must not leave children serving
                self.death(SIGTERM)
                if posix.getppid() != self.pid:  # it died before that call
                    raise ChildStop
            conn = Socket(self.family, SOCK_STREAM, 0, fd)
            pid = posix.getpid()
            send = self.send
            config = self.config
            session = self.session(config.max_line, log_lines=not config.quiet)
            stopping = self.child_stopping
            reason = "server stopping"
            try:
                reason = serve_blocking(
                    conn,
                    session,
                    config.idle_timeout,
                    lambda: stopping[0],
                    self.idle,
                    None if config.quiet else self.heard_by(pid),
                    config.line_timeout,
                    timeouts_set=config.timeouts_set,
                )
            except ChildStop:
                pass
            finally:
                self.idle[0] = False  # a SIGTERM from now on only sets the flag
                try:
                    conn.close()
                except OSError:
                    pass
            body = f"{session.lines} {since(started)} {reason}".encode()
            send(HEAD.pack(b"E", pid) + body)
        except BaseException:
            code = 1
        finally:
            posix._exit(code)

    def heard_by(self, pid: int) -> Callable[[list[bytes]], None]:
        """In a child: send the lines it heard to the server."""
        head = HEAD.pack(b"L", pid)
        send = self.send

        def heard(lines: list[bytes]) -> None:
            out = [head]
            size = 0
            for line in lines:
                if size + len(line) > LINES_CHUNK and size:
                    send(b"".join(out))
                    out, size = [head], 0
                out.append(LEN.pack(len(line)))
                out.append(line)
                size += len(line) + 4
            send(b"".join(out))

        return heard


FREEZE = True


def main() -> None:
    import sys

    Forker(Config(sys.argv[1:])).run()

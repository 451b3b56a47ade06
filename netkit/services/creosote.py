"""Mr. Creosote, the lecture's remote debugger: the listener.

:class:`CreosoteListener` receives every dialect Python programs send
(:mod:`netkit.protocols.dialects`) over UDP and, with ``tcp``, over TCP
(:mod:`netkit.services.creosote_tcp`, on the same loop), filters them,
forwards them (:mod:`netkit.services.forward`), emits one event per record
and can append one escaped line per record to a log file.  The sender and
the logging handler are :mod:`netkit.clients.creosote`.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
import time
from datetime import datetime

from netkit.clients.creosote import spew as spew  # tests import it from here
from netkit.events import Listening, Notice, Sink
from netkit.events.creosote import IncompleteMessage, Message, RecordRefused
from netkit.net import (
    UDP_MAX_PAYLOAD,
    NetError,
    bind_socket,
    bound_address,
    describe_error,
    dual_stack,
    format_peer,
    udp_drops,
)
from netkit.protocols import creosote, syslog
from netkit.protocols.dialects import Accepted, Collected, DatagramCollector, RefusedFrom
from netkit.protocols.records import RecordFilter, level_name
from netkit.protocols.text import escape
from netkit.services.core import Server
from netkit.services.creosote_tcp import TcpLimits, TcpRecords
from netkit.services.forward import Forwarder
from netkit.services.loops import DatagramReader, Loop

DEFAULT_PORT = creosote.DEFAULT_PORT
RCVBUF = 4 << 20  # ask for a large receive buffer: bursts of chunks (capped by rmem_max)
_BATCH = 1000  # datagrams read per wake-up before the log file is flushed
LOG_BUFFER = 1 << 16  # bytes of whole lines the log file collects before a write
_DRAIN_SECONDS = 2.0  # on SIGTERM/SIGINT, read what is queued for at most this long
LOG_CHECK_SECONDS = 0.5  # how often the log path is checked for a rotation (inode change)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------
# log file


def open_logfile(path: str) -> LineLog:
    """Open *path* for appending; refuse a symlink, FIFO, directory or device.

    ``O_NOFOLLOW`` and an ``fstat`` of what was opened make the check hold
    even if the path is swapped between the look and the open.
    """

    def refuse(why: str) -> NetError:
        return NetError(f"log file {path}: {why}; give the path of a regular file")

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise NetError(describe_error(exc, f"log file {path}")) from exc
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise refuse("is a symbolic link, not followed")
        if stat.S_ISFIFO(st.st_mode):
            raise refuse("is a FIFO")
        if stat.S_ISDIR(st.st_mode):
            raise refuse("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise refuse("is not a regular file")
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise NetError(describe_error(exc, f"cannot open log file {path}")) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise refuse("is not a regular file")
    os.set_blocking(fd, True)
    try:
        if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
            # the last line was cut short (a kill -9 can stop write(2) at a page
            # boundary): end it, so the next record starts a line of its own
            os.write(fd, b"\n")
    except OSError as exc:
        os.close(fd)
        raise NetError(describe_error(exc, f"cannot write to log file {path}")) from exc
    return LineLog(fd)


class LineLog:
    """An append-only log file that only ever writes whole lines.

    Complete lines are collected and handed to ``write(2)`` together
    (``O_APPEND``), at most :data:`LOG_BUFFER` bytes at a time (a longer
    line on its own), so a ``kill -9`` between two writes leaves whole lines
    on disk.  (The kernel itself may stop a ``write(2)`` of several pages at
    a page boundary when SIGKILL arrives during it; :func:`open_logfile` ends
    such a cut line when the file is opened again.)  When the disk fills in
    the middle of a write, the file is cut back to its last whole line (a
    buffered text file leaves half a line there), and :attr:`lines_written`
    says how many lines are on disk.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._lines: list[bytes] = []
        self._size = 0
        self.lines_written = 0  # whole lines on disk

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("log file closed")
        return self._fd

    def write(self, line: str) -> None:
        data = line.encode("utf-8", "surrogateescape")
        if self._size + len(data) > LOG_BUFFER:
            self.flush()
        self._lines.append(data)
        self._size += len(data)

    def flush(self) -> None:
        if not self._lines:
            return
        data = b"".join(self._lines)
        count = len(self._lines)
        self._lines, self._size = [], 0
        fd = self.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        done = 0
        try:
            while done < len(data):  # a regular file takes it all unless the disk is full
                done += os.write(fd, data[done:])
        except OSError:
            # disk full after part of it: cut the file back to its last whole line
            # (only when nobody else wrote to it meanwhile)
            keep = data.rfind(b"\n", 0, done) + 1
            try:
                if os.fstat(fd).st_size == start + done:
                    os.ftruncate(fd, start + keep)
            except OSError:
                pass
            self.lines_written += data.count(b"\n", 0, keep)
            raise
        self.lines_written += count

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            self._lines, self._size = [], 0
            os.close(fd)


def message_line(time_text: str, peer: str, data: bytes, note: str = "") -> str:
    """One log-file line: time, source, optional note, the escaped message; one line always."""
    prefix = f"{time_text} {peer} "
    if note:
        prefix += f"[{note}] "
    return prefix + escape(data) + "\n"


# --------------------------------------------------------------------------
# listener


class CreosoteListener(Server):
    """Receive records on UDP and/or TCP; ``count`` counts whole messages."""

    thread_name = "netkit-creosote"
    failure_action = "listener failed"

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        version: int | None = None,
        count: int | None = None,
        logfile: str | None = None,
        quiet: bool = False,
        incomplete_timeout: float = 5.0,
        raw: bool = False,
        record_filter: RecordFilter | None = None,
        filter_log: bool = False,
        forwarders: list[Forwarder] | None = None,
        udp: bool = True,
        tcp: bool = False,
        max_clients: int = 64,
        max_record: int = 1 << 20,
        idle_timeout: float = 300.0,
    ) -> None:
        super().__init__(sink, count=count)
        if not (udp or tcp):
            raise ValueError("listen on UDP, TCP or both")
        self.host = host
        self.port = port
        self.version = version
        self.logfile = logfile
        self.quiet = quiet
        self.udp = udp
        self.tcp = tcp
        self.tcp_limits = TcpLimits(max_clients, max_record, idle_timeout)
        self.collector = DatagramCollector(timeout=incomplete_timeout, raw=raw)
        self.reassembler = self.collector.reassembler
        self.filter = record_filter or RecordFilter()
        self.filter_log = filter_log
        self.forwarders = forwarders or []
        self._refused_next = 0.0  # when the next refused record may be reported
        self._refused_quiet = 0  # refused since the last report
        self._sock: socket.socket | None = None
        self._tcp_sock: socket.socket | None = None
        self._log: LineLog | None = None
        self._log_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open log file
        self._log_lock = threading.Lock()
        self._log_error: str | None = None  # the first write error: reported once
        self._lines_logged = 0  # whole lines on disk in log files already closed
        self._reopen = threading.Event()
        self._reopen_failed = False
        self._next_log_check = 0.0

    def bind(self) -> tuple[str, int]:
        if self.logfile is not None:
            self._set_log(open_logfile(self.logfile))  # refused before listening
        # --port 0 with both: the TCP port of the UDP one's number may be taken; try another
        attempts = 20 if (self.udp and self.tcp and self.port == 0) else 1
        for attempt in range(attempts):
            try:
                address = self._bind_once()
                break
            except NetError as exc:
                cause = exc.__cause__
                in_use = isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if not in_use or attempt == attempts - 1:
                    raise
        for forwarder in self.forwarders:
            forwarder.notify = self._forward_notice
            forwarder.start()
        return address

    def _bind_once(self) -> tuple[str, int]:
        address: tuple[str, int] | None = None
        if self.udp:
            sock = bind_socket(
                self.host, self.port, socktype=socket.SOCK_DGRAM, version=self.version
            )
            self._sock = sock
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            except OSError:
                pass
            address = bound_address(sock)
        if self.tcp:
            host, port = address if address is not None else (self.host, self.port)
            self._tcp_sock = bind_socket(
                host, port, socktype=socket.SOCK_STREAM, version=self.version
            )
            address = address or bound_address(self._tcp_sock)
        assert address is not None
        return address

    def listening(self, address: tuple[str, int]) -> Listening:
        """``listening`` for UDP, then for TCP (the core emits the one returned)."""
        log = self.logfile
        udp = None
        if self._sock is not None:
            both = dual_stack(self._sock)
            udp = Listening(address[0], address[1], "udp", logfile=log, dual_stack=both)
        if self._tcp_sock is None:
            assert udp is not None
            return udp
        if udp is not None:
            self.emit(udp)
        host, port = bound_address(self._tcp_sock)
        both = dual_stack(self._tcp_sock)
        return Listening(host, port, "tcp", logfile=log, dual_stack=both)

    def _forward_notice(self, level: str, message: str) -> None:
        self.emit(Notice(level=level, message=message))

    # -- the receive loop ----------------------------------------------------
    def serve(self) -> None:
        loop = Loop(self)
        sock = self._sock
        reader = None
        if sock is not None:
            reader = DatagramReader(
                loop,
                sock,
                self._datagram,
                batch=_BATCH,
                bufsize=UDP_MAX_PAYLOAD,
                max_recv_errors=None,
                watch=False,
            )

            def readable() -> None:
                self._check_log()
                assert reader is not None
                reader.read()

            loop.add(sock, readable)
        tcp = None
        if self._tcp_sock is not None:
            tcp = TcpRecords(self, loop, self._tcp_sock, self.tcp_limits)

        def after_round() -> None:
            self._check_log()
            for got in self.collector.expire(time.monotonic()):
                self._collected(got)
            self._flush_log()

        loop.after_round.append(after_round)
        try:
            while not self.stop_requested:
                deadline = self.collector.next_deadline()
                loop.run_once(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if tcp is not None:
                tcp.close_all()  # what each connection holds whole is handed over first
            if reader is not None and sock is not None and not self._count_reached():
                # stopped by a signal: take what the kernel already holds (bounded)
                until = time.monotonic() + _DRAIN_SECONDS
                for _ in range(100 * _BATCH // 256):
                    if self.failure is not None or time.monotonic() > until:
                        break
                    if reader.read(256, stopping=True) < 256:
                        break
                self._count_unread(sock)
            for got in self.collector.flush("stopped"):
                self._collected(got)
            if sock is not None:
                self._report_drops(sock)
        finally:
            if reader is not None:
                reader.close()
                self.add_counts({"receive_errors": reader.recv_errors})
            loop.close()
            self._close_log()

    def _datagram(self, data: memoryview, addr: tuple[str, int]) -> None:
        if self._count_reached() or self.failure is not None:
            return None  # read and dropped: the stop is on its way
        self.bump("datagrams")
        for got in self.collector.feed(addr, bytes(data), time.monotonic()):
            self._collected(got)
        return None

    def _count_unread(self, sock: socket.socket) -> None:
        """Count (not show) what the kernel still holds after the drain: never lost silently."""
        unread = 0
        buf = bytearray(UDP_MAX_PAYLOAD)
        until = time.monotonic() + 1.0
        for i in range(1_000_000):
            if i % 1024 == 1023 and time.monotonic() > until:
                break
            try:
                sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            unread += 1
        if unread:
            self.bump("unread_at_stop", unread)
            self.emit(
                Notice(
                    level="warning",
                    message=f"{unread} datagrams were still queued when the listener stopped "
                    f"(it reads for {_DRAIN_SECONDS:g} s after the signal); counted as "
                    "unread_at_stop, not shown or logged",
                )
            )

    def _report_drops(self, sock: socket.socket) -> None:
        """Put the kernel's count of datagrams dropped for this socket in the summary."""
        drops = udp_drops(sock)
        if drops is None:
            return
        self.bump("kernel_drops", drops)
        if drops:
            self.emit(
                Notice(
                    level="warning",
                    message=f"the kernel dropped {drops} datagrams for this listener (receive "
                    "buffer full: they came faster than it could read them); they are not "
                    "shown or logged",
                )
            )

    def _count_reached(self) -> bool:
        return self.count is not None and self.counts["messages"] >= self.count

    def _collected(self, got: Collected) -> None:
        if isinstance(got, Accepted):
            self.accept(got)
        elif isinstance(got, RefusedFrom):
            self.refuse(got)
        else:
            self._incomplete(got)

    def accept(self, got: Accepted) -> None:
        """Log, forward, count and show one record (from UDP or TCP)."""
        assert isinstance(got.source, tuple)
        rec = got.record
        when = _now()
        peer = format_peer(got.source)
        data = got.raw if got.raw is not None else rec.message
        why = self.filter.rejects(rec, got.source[0]) if self.filter.active else None
        if why is None or not self.filter_log:
            self._write(message_line(when, peer, data))
            for forwarder in self.forwarders:
                forwarder.submit(rec, peer)
        done = self.bump("messages")  # (UDP and TCP threads both count here)
        if got.raw is not None:
            self.bump("syslog")
        if got.chunks > 1:
            self.bump("chunked")
        if why is not None:
            self.bump("filtered")
        elif not self.quiet:
            parsed = syslog.parse(got.raw) if got.raw is not None else None
            grep = self.filter.grep
            spans: tuple[tuple[int, int], ...] = ()
            if grep is not None:
                text = rec.message.decode("utf-8", "surrogateescape")
                spans = tuple(m.span() for m in grep.finditer(text) if m.end() > m.start())
            self.emit(
                Message(
                    time=when,
                    peer=peer,
                    data=data,
                    bytes=len(data),
                    chunks=got.chunks,
                    syslog=parsed.as_dict() if parsed is not None else None,
                    dialect=rec.dialect,
                    level=level_name(rec.level) if rec.level is not None else None,
                    logger=rec.logger,
                    fields=rec.fields or None,
                    levelno=rec.level,
                    highlight=spans,
                )
            )
        if self.count is not None and done >= self.count:
            self.request_stop()

    def refuse(self, got: RefusedFrom) -> None:
        """Count a refused record; report it, at most one a second."""
        assert isinstance(got.source, tuple)
        self.bump("refused")
        now = time.monotonic()
        if now < self._refused_next:
            self._refused_quiet += 1
            return
        self._refused_next = now + 1.0
        more, self._refused_quiet = self._refused_quiet, 0
        self.emit(
            RecordRefused(
                time=_now(),
                peer=format_peer(got.source),
                dialect=got.refused.dialect,
                reason=got.refused.reason,
                more=more,
            )
        )

    def _incomplete(self, inc: creosote.Incomplete) -> None:
        assert isinstance(inc.source, tuple)
        when = _now()
        peer = format_peer(inc.source)
        kind = "" if inc.dialect == "netkit" else f"{inc.dialect} "
        note = f"incomplete {kind}{inc.received}/{inc.total} chunks, {inc.reason}"
        self._write(message_line(when, peer, inc.data, note))
        self.bump("incomplete")
        if not self.quiet:
            self.emit(
                IncompleteMessage(
                    time=when,
                    peer=peer,
                    id=inc.msg_id,
                    data=inc.data,
                    bytes=len(inc.data),
                    received=inc.received,
                    total=inc.total,
                    missing=inc.missing,
                    reason=inc.reason,
                    missing_count=inc.missing_count,
                    missing_ranges=inc.missing_ranges,
                    dialect=inc.dialect,
                )
            )

    # -- log file ------------------------------------------------------------
    def _set_log(self, log: LineLog) -> None:
        st = os.fstat(log.fileno())
        self._log, self._log_id = log, (st.st_dev, st.st_ino)

    def reopen_log(self) -> None:
        """Reopen the log file at its path (SIGHUP; safe from a signal handler)."""
        self._reopen.set()
        self.waker.wake()  # full or closed: the flag is seen at the next wake-up anyway

    def _check_log(self) -> None:
        """Reopen the log file after SIGHUP, or when its path now names another file.

        ``mv debug.log debug.log.1`` (logrotate) leaves the listener writing to
        debug.log.1 until this notices, within :data:`LOG_CHECK_SECONDS` of
        the next message: then what was buffered goes to the old file and the
        next line to a new debug.log, so nothing is lost or written twice.
        """
        path = self.logfile
        if path is None or self._log is None:
            return
        now = time.monotonic()
        if not self._reopen.is_set() and now < self._next_log_check:
            return
        self._next_log_check = now + LOG_CHECK_SECONDS
        asked = self._reopen.is_set()
        self._reopen.clear()
        try:
            st = os.stat(path)
            moved = (st.st_dev, st.st_ino) != self._log_id
        except FileNotFoundError:
            moved = True
        except OSError:
            moved = False
        if not (moved or asked):
            return
        try:
            new = open_logfile(path)
        except NetError as exc:
            if not self._reopen_failed:  # once, not every half second
                self._reopen_failed = True
                self.emit(Notice(level="warning", message=f"{exc}; still writing to the old file"))
            return
        self._reopen_failed = False
        with self._log_lock:
            old = self._log
            if old is None:  # a write failed meanwhile
                new.close()
                return
            try:
                old.flush()
            except OSError as exc:
                new.close()
                self._log_failed(exc)
                return
            self._set_log(new)
        self._retire(old)
        self.bump("log_reopened")
        why = "SIGHUP" if asked else "the file was moved away"
        self.emit(Notice(level="info", message=f"log file {path} reopened ({why})"))

    def _write(self, line: str) -> None:
        with self._log_lock:
            if self._log is None:
                return
            try:
                self._log.write(line)
            except OSError as exc:
                self._log_failed(exc)

    def _flush_log(self) -> None:
        with self._log_lock:
            if self._log is None:
                return
            try:
                self._log.flush()
            except OSError as exc:
                self._log_failed(exc)

    def _log_failed(self, exc: OSError) -> None:
        """A write failed (disk full): say so once, stop logging, keep showing messages.

        Called with ``_log_lock`` held.  The command exits 1 at the end.
        """
        if self._log_error is None:
            self._log_error = describe_error(exc, f"cannot write to log file {self.logfile}")
            self.emit(
                Notice(
                    level="error",
                    message=f"{self._log_error}; messages are still shown but no longer logged",
                )
            )
        log, self._log = self._log, None
        if log is not None:
            self._retire(log)

    def _retire(self, log: LineLog) -> None:
        """Close a log file (its unwritten lines are lost) and count its lines."""
        self._lines_logged += log.lines_written
        try:
            log.close()
        except OSError:
            pass  # a write failed already: reported

    def _close_log(self) -> None:
        with self._log_lock:
            log = self._log
            if log is None:
                return
            try:
                log.flush()
                os.fsync(log.fileno())
            except OSError as exc:
                self._log_failed(exc)
                return
            self._log = None
            self._retire(log)

    # what is queued is read for up to _DRAIN_SECONDS (and counted for 1 s more) after a
    # stop; the thread must end before the log closes and the summary is made
    stop_margin = _DRAIN_SECONDS + 30.0

    def finish(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            # never close the log or sum up while the receive thread still works
            self.fail("the receive thread did not stop in time; the summary is incomplete")
            return
        for forwarder in self.forwarders:
            forwarder.close()
            self.bump("forwarded", forwarder.sent)
            if forwarder.dropped:
                self.bump("forward_dropped", forwarder.dropped)
            if forwarder.resets:
                self.bump("forward_resets", forwarder.resets)
            if forwarder.resent and forwarder.target.transport == "relp":
                # sent again after a lost connection: over RELP these may arrive twice
                self.bump("forward_resent", forwarder.resent)
        self._close_log()
        if self.logfile is not None:
            with self._counts_lock:  # lines on disk, and the messages that are not
                records = self.counts["messages"] + self.counts["incomplete"]
                if self.filter_log:  # --filter-log keeps filtered records out on purpose
                    records -= self.counts["filtered"]
                self.counts["logged"] = self._lines_logged
                if records > self._lines_logged:
                    self.counts["not_logged"] = records - self._lines_logged
        if self._log_error is not None and self.failure is None:
            # reported when it happened; the exit status says so too (exit 1)
            self.failure = f"the log file {self.logfile} is incomplete: a write failed (see above)"

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # the thread still uses them (reported in finish)
        self._close_log()
        for forwarder in self.forwarders:
            forwarder.close(0.0)  # after a failed start, or again: nothing left to send
        for sock in (self._sock, self._tcp_sock):
            if sock is not None:
                sock.close()

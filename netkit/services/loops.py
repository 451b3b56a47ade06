"""The server loops, written once: a selector loop, an accept loop, a datagram loop.

:class:`Loop` is one selector that watches the server's :class:`Waker`,
any number of files (a callback each when readable) and timers.  On it:

- :class:`Acceptor` accepts on a listening socket in batches and backs off
  on EMFILE and the like instead of spinning, reporting at most once a
  second (connections wait in the backlog meanwhile);
- :class:`DatagramReader` reads a UDP socket in batches and sends the reply
  a handler returns;
- :class:`BatchedEchoReader` is the same with Linux recvmmsg/sendmmsg
  (:mod:`netkit.services._mmsg`) for an echo server with nothing to log.

Every stream server (tcp-time, upper-server's sync, thread and fork modes)
and every datagram server (udp-echo, tcp-time and upper-server over UDP,
creosote) runs on these.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import selectors
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from netkit.events import Notice
from netkit.protocols.ratelimit import ReportLimit

if TYPE_CHECKING:
    from netkit.protocols.echo import EchoPolicy, ReplyGuard
    from netkit.services.core import Server, Service

#: accept() errors that mean "out of a resource, try again later"
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BATCH = 64
DATAGRAM_BATCH = 64
#: resource warnings (EMFILE and the like) are logged at most this often
REPORT_INTERVAL = 1.0


class Backoff:
    """Exponential back-off after resource errors (EMFILE), reported at most once a second.

    The pause is capped at one second, so a server answers again within
    about a second of descriptors coming free.
    """

    def __init__(self, first: float = 0.05, limit: float = 1.0) -> None:
        self.first = first
        self.limit = limit
        self.delay = 0.0
        self.reports = ReportLimit(REPORT_INTERVAL)

    def hit(self) -> float:
        """Record a failure; return how long to wait before accepting again."""
        self.delay = self.first if self.delay == 0 else min(self.delay * 2, self.limit)
        return self.delay

    def ok(self) -> None:
        self.delay = 0.0

    def report_due(self) -> bool:
        """True when this failure should be logged (not within a second of the last)."""
        return self.reports.due(time.monotonic())


def resource_notice(exc: OSError, delay: float) -> Notice:
    from netkit.net import describe_error

    return Notice(
        "warning",
        describe_error(exc, "accept")
        + f"; not accepting for {delay:g} s (connections wait in the backlog)",
    )


class Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """One selector: the server's waker, files with a callback each, and timers.

    :meth:`run` returns once the server's stop is requested.  *after_round*
    callbacks run after each round of ready files (a log flush, say).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.after_round: list[Callable[[], None]] = []
        self.selector.register(server.waker, selectors.EVENT_READ, server.waker.drain)

    def add(self, fileobj: Any, callback: Callable[[], None]) -> None:
        self.selector.register(fileobj, selectors.EVENT_READ, callback)

    def remove(self, fileobj: Any) -> None:
        self.selector.unregister(fileobj)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def _timeout(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        if not timers:
            return None
        return max(timers[0][0] - time.monotonic(), 0.0)

    def _run_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _when, _seq, timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.callback()

    def run_once(self, timeout: float | None = None) -> None:
        due = self._timeout()
        if timeout is not None:
            due = timeout if due is None else min(due, timeout)
        for key, _events in self.selector.select(due):
            key.data()
            if self.server.stop_requested:
                return
        if self._timers:
            self._run_timers()
        for callback in self.after_round:
            callback()

    def run(self) -> None:
        server = self.server
        while not server.stop_requested:
            self.run_once()

    def close(self) -> None:
        self.selector.close()


class AcceptLoop(Protocol):
    """What an :class:`Acceptor` needs of a loop: :class:`Loop`, or an adapter to another."""

    @property
    def server(self) -> Service: ...

    def add(self, fileobj: Any, callback: Callable[[], None]) -> None: ...

    def remove(self, fileobj: Any) -> None: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Any: ...


class Acceptor:
    """Accept connections on *sock* in batches and hand each to *on_connection*.

    Resource errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) stop accepting for a
    back-off that doubles up to a second (clients wait in the backlog),
    counted as ``accept_errors`` and reported at most once a second.
    Errors about one connection that went away before it was accepted
    (ECONNABORTED and the like) are skipped.  :meth:`pause` and
    :meth:`resume` stop and restart accepting (a full waiting list).
    """

    def __init__(
        self,
        loop: AcceptLoop,
        sock: socket.socket,
        on_connection: Callable[[socket.socket, Any], None],
        *,
        batch: int = ACCEPT_BATCH,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.on_connection = on_connection
        self.batch = batch
        self.backoff = Backoff()
        self._watching = False
        self._paused = False
        self._backing_off = False
        sock.setblocking(False)
        self._watch()

    def _watch(self) -> None:
        want = not self._paused and not self._backing_off
        if want and not self._watching:
            self.loop.add(self.sock, self._readable)
        elif not want and self._watching:
            self.loop.remove(self.sock)
        self._watching = want

    def pause(self) -> None:
        self._paused = True
        self._watch()

    def resume(self) -> None:
        self._paused = False
        self._watch()

    def _resume_after_backoff(self) -> None:
        self._backing_off = False
        self._watch()

    def _readable(self) -> None:
        accept = self.sock.accept
        server = self.loop.server
        for _ in range(self.batch):
            try:
                conn, addr = accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    self._resource_error(exc)
                    return
                continue  # ECONNABORTED and the like: that client is gone
            self.on_connection(conn, addr)
            if server.stop_requested or self._paused:
                return
        self.backoff.ok()

    def _resource_error(self, exc: OSError) -> None:
        server = self.loop.server
        delay = self.backoff.hit()
        server.bump("accept_errors")
        if self.backoff.report_due():
            server.emit(resource_notice(exc, delay))
        self._backing_off = True
        self._watch()
        self.loop.call_at(time.monotonic() + delay, self._resume_after_backoff)


#: a reply handler: (datagram, source address) -> the reply, or None for none
Handler = Callable[[memoryview, Any], "bytes | None"]


class DatagramReader:
    """Read datagrams from *sock* (up to *batch* per wake-up) and answer them.

    *handle* gets each datagram (a view valid only during the call) and its
    source address and returns the reply or ``None``.  A failed send calls
    *on_send_error* (default: count ``send_errors``); more than
    *max_recv_errors* failed receives end the server (``receive failed``).
    Without *watch*, the caller calls :meth:`read` when it chooses.

    With *guard* (:class:`netkit.protocols.echo.ReplyGuard`), a datagram the
    guard refuses never reaches *handle*: it is counted in :attr:`dropped`
    by reason and given to *on_drop* (default: a warning at most once a
    second, unless the server is quiet).  Every UDP responder answers
    through this, so each gets the same guards.
    """

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        handle: Handler,
        *,
        batch: int = DATAGRAM_BATCH,
        on_send_error: Callable[[OSError], None] | None = None,
        bufsize: int = 65_535,
        max_recv_errors: int | None = 100,
        watch: bool = True,
        guard: ReplyGuard | None = None,
        on_drop: Callable[[str, memoryview, Any], None] | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.handle = handle
        self.guard = guard
        self.on_drop = on_drop or self._report_drop
        self.dropped: dict[str, int] = {}
        self._reports = ReportLimit(REPORT_INTERVAL)
        self.batch = batch
        self.on_send_error = on_send_error
        self.send_errors = 0
        self.recv_errors = 0
        self.max_recv_errors = max_recv_errors
        self._buf = bytearray(bufsize)
        self._view = memoryview(self._buf)
        sock.setblocking(False)
        if watch:
            loop.add(sock, self.readable)

    def readable(self) -> None:
        self.read()

    def read(self, limit: int | None = None, *, stopping: bool = False) -> int:
        """Read and answer what is queued (at most *limit*, default *batch*); how many.

        A stop request ends the batch, unless *stopping* (reading what is
        left after the stop).
        """
        recv_into = self.sock.recvfrom_into
        sendto = self.sock.sendto
        handle = self.handle
        guard = self.guard
        view = self._view
        server = self.loop.server
        done = 0
        for _ in range(self.batch if limit is None else limit):
            try:
                n, addr = recv_into(self._buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.recv_errors += 1
                if self.max_recv_errors is not None and self.recv_errors > self.max_recv_errors:
                    from netkit.net import describe_error

                    server.fail(describe_error(exc, "receive failed"))
                    break
                continue
            done += 1
            data = view[:n]
            if guard is not None:
                now = time.monotonic()
                reason = guard.check(addr[0], addr[1], data, now)
                if reason is not None:
                    self.dropped[reason] = self.dropped.get(reason, 0) + 1
                    self.on_drop(reason, data, addr)
                    reply = None
                else:
                    reply = handle(data, addr)
                    if reply is not None:
                        guard.sent(addr[0], addr[1], reply, now)
            else:
                reply = handle(data, addr)
            if reply is not None:
                try:
                    sendto(reply, addr)
                except OSError as exc:
                    if self.on_send_error is None:
                        self.send_errors += 1
                    else:
                        self.on_send_error(exc)
            if server.stop_requested and not stopping:
                break
        return done

    def _report_drop(self, reason: str, _data: memoryview, addr: Any) -> None:
        server = self.loop.server
        if getattr(server, "quiet", False) or not self._reports.due(time.monotonic()):
            return
        from netkit.net import format_peer
        from netkit.protocols.echo import DROP_REASONS

        more = self._reports.take_suppressed()
        tail = f"; {more} more not answered since the last report" if more else ""
        server.emit(
            Notice("warning", f"not answered {format_peer(addr)}: {DROP_REASONS[reason]}{tail}")
        )

    def drop_counts(self) -> dict[str, int]:
        """The summary's ``dropped_<reason>`` counts."""
        return {f"dropped_{reason}": n for reason, n in self.dropped.items()}

    def close(self) -> None:
        self._view.release()


class BatchedEchoReader:
    """An echo server's datagram loop on recvmmsg/sendmmsg: nothing logged per datagram.

    *policy* decides each reply (:class:`netkit.protocols.echo.EchoPolicy`,
    each source given packed); *drop* is called with the reason of each
    datagram not answered.  ``received``, ``replied`` and ``send_errors``
    count what happened.
    """

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        policy: EchoPolicy,
        drop: Callable[[str], None],
    ) -> None:
        from netkit.services import _mmsg

        self.loop = loop
        self.sock = sock
        self.policy = policy
        self.drop = drop
        self.received = self.replied = self.send_errors = 0
        self.batch = _mmsg.Batch(sock.fileno())
        batch = self.batch
        self._namesize = names = _mmsg.NAMESIZE
        # the policy's packed source is the socket address from its port on
        # (the family's two bytes before it are the same for every datagram)
        addr_end = 8 if sock.family == socket.AF_INET else 24
        #: each slot's places, worked out once: its length in batch.msgs, its
        #: source in the names, its bytes in batch.data, its reply length in batch.iov
        self._slots = [
            (
                i,
                i * batch.stride + batch.len_at,
                i * names + 2,
                i * names + addr_end,
                i * _mmsg.BUFSIZE,
                i * 2 + 1,
            )
            for i in range(_mmsg.BATCH)
        ]
        sock.setblocking(False)
        loop.add(sock, self.readable)

    def readable(self) -> None:
        batch = self.batch
        server = self.loop.server
        # up to 16 batches per wake-up, then look at the waker.  Read again
        # until none is queued (as the C reference does): under load more
        # have come while these were answered, and a read that finds none
        # costs less than a trip through the selector
        for _ in range(16):
            n = batch.recv()
            if n == 0:
                return
            self._answer(n)
            if server.stop_requested:
                return

    def _answer(self, n: int) -> None:
        batch = self.batch
        msgs, iov, data = batch.msgs, batch.iov, batch.data
        answer = self.policy.answer
        drop = self.drop
        self.received += n
        now = time.monotonic()
        dropped: list[int] = []
        # the source addresses as bytes once: slicing bytes is cheaper than a view
        sources = batch.names[: n * self._namesize].tobytes()
        for i, len_at, src, src_end, off, iov_at in self._slots[:n]:
            size = msgs[len_at]
            # .tobytes(): the datagram as bytes at once (bytes(view) is slower)
            reply = answer(sources[src:src_end], data[off : off + size].tobytes(), now)
            if isinstance(reply, str):
                dropped.append(i)
                drop(reply)
                continue
            iov[iov_at] = size
            if size:
                data[off : off + size] = reply
        # send the replies, skipping dropped slots and any datagram the kernel refuses
        start = 0
        for stop_at in [*dropped, n]:
            while start < stop_at:
                sent = batch.send(start, stop_at - start)
                if sent < 0:
                    self.send_errors += 1
                    sent = 1  # skip the one that failed
                else:
                    self.replied += sent
                start += sent
            start = stop_at + 1
        batch.reset(n)

    def close(self) -> None:
        self.batch.release()

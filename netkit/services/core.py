"""The server core: what every netkit server shares, written once.

:class:`Service` is the life cycle a test or the CLI drives, the way
CPython's socketserver tests drive their servers::

    with UdpEchoServer(sink, port=0) as server:
        host, port = server.address
        ...

The CLI calls :meth:`Service.start`, then :meth:`Service.wait` until
``--count`` is reached or a signal calls :meth:`Service.request_stop`, then
:meth:`Service.stop`.

:class:`Server` adds the one background thread and the one :class:`Waker`
every server loop watches, so a stop request (from a signal handler, from
``--count``, from a failure) takes effect at once rather than at the next
timeout.  A subclass binds in :meth:`Server.bind`, serves in
:meth:`Server.serve` (the background thread) and releases what it still
holds in :meth:`Server.close`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Self

from netkit.events import Event, Sink, Summary

#: how long the main thread waits at most before it looks again: a signal the
#: kernel hands to another thread of the process only runs its Python handler
#: (a second Ctrl-C's force_stop, say) once the main thread wakes up
SIGNAL_SLICE = 0.1


class Service:
    """The life cycle: start / address / stop, counting, stop requests, failure.

    Subclasses implement :meth:`_start` and :meth:`_stop`; :class:`Server`
    does both for a server with one background loop.
    """

    def __init__(self, sink: Sink, *, count: int | None = None) -> None:
        self.sink = sink
        self.count = count
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._address: tuple[str, int] | None = None
        self._started = False
        self._stopped = False
        self._started_at = 0.0
        #: set by :meth:`force_stop`: close what is open now, without the grace
        self.forced = False
        #: summary counts that only repeat another one (upper-server's handled
        #: is its connections): left out of the summary
        self.summary_omits: tuple[str, ...] = ()
        self.failure: str | None = None

    # -- to implement -------------------------------------------------------
    def _start(self) -> tuple[str, int]:
        """Bind, start serving in the background, return the bound address."""
        raise NotImplementedError

    def _stop(self, grace: float) -> None:
        """Stop serving and release every resource within about *grace* seconds."""
        raise NotImplementedError

    # -- public API -----------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("service not started")
        return self._address

    def start(self) -> Self:
        self._started_at = time.monotonic()
        self._address = self._start()
        self._started = True
        return self

    def emit(self, event: Event) -> None:
        self.sink(event)

    def bump(self, key: str, n: int = 1) -> int:
        with self._counts_lock:
            self.counts[key] += n
            return self.counts[key]

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add several counts at once (the non-zero ones)."""
        with self._counts_lock:
            for key, n in counts.items():
                if n:
                    self.counts[key] += n

    def handled(self, n: int = 1) -> None:
        """Count handled requests; request a stop when ``count`` is reached."""
        done = self.bump("handled", n)
        if self.count is not None and done >= self.count:
            self.request_stop()

    def fail(self, message: str) -> None:
        """Record a runtime failure (the command exits 1 with it) and request a stop."""
        if self.failure is None:
            self.failure = message
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the service to stop (safe from a signal handler or any thread)."""
        self._stop_requested.set()

    def force_stop(self) -> None:
        """Stop now: what is still open is closed without waiting out the grace
        (a second Ctrl-C).  Safe from a signal handler or any thread."""
        self.forced = True
        self.request_stop()

    def busy(self) -> int:
        """How many connections a stop would wait for (up to its grace)."""
        return 0

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested (``--count`` reached, signal); True if so.

        Waits in short slices (:data:`SIGNAL_SLICE`): a lock wait without a
        timeout would never wake up for a signal handled in another thread.
        """
        if timeout is not None:
            return self._stop_requested.wait(timeout)
        while not self._stop_requested.wait(SIGNAL_SLICE):
            pass
        return True

    def stop(self, grace: float = 1.0) -> None:
        if self._stopped or not self._started:
            return
        self._stopped = True
        self.request_stop()
        self._stop(grace)

    def summary(self, reason: str = "stopped") -> Summary:
        uptime = round(time.monotonic() - self._started_at, 3) if self._started else None
        with self._counts_lock:
            counts = {k: v for k, v in self.counts.items() if k not in self.summary_omits}
        return Summary(counts=counts, reason=reason, uptime=uptime)

    def __enter__(self) -> Self:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Waker:
    """A self-pipe: :meth:`wake` (safe from a signal handler or any thread)
    makes :meth:`fileno` readable, which wakes a ``select()`` on it."""

    __slots__ = ("_r", "_w")

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def fileno(self) -> int:
        return self._r

    def wake(self) -> None:
        try:
            os.write(self._w, b"x")
        except OSError:
            pass  # already pending (the pipe is full), or closed at stop

    def drain(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


class Server(Service):
    """A service that serves in one background thread and can be woken up.

    Override:

    - :meth:`bind` (required): bind the sockets, return the bound address.
      Runs in the caller's thread; an exception is the start's failure.
    - :meth:`serve` (required): the loop, run in the background thread.
      It watches :attr:`waker` and returns once :attr:`stop_requested`.
      An exception ends it and is recorded with :meth:`fail` (exit 1).
    - :meth:`listening` : the ``listening`` event, emitted after
      :meth:`bind` and before :meth:`serve` starts.
    - :meth:`close`: release what :meth:`bind` made, after the thread ended.
    - :meth:`finish`: extra counts for the summary, after the thread ended.

    :attr:`grace` is how long :meth:`serve` may take to finish what is open
    once a stop is requested; :meth:`stop` waits that long for the thread,
    plus :attr:`stop_margin`.
    """

    thread_name = "netkit-server"
    #: what a failure of :meth:`serve` is reported as ("<this>: <why>")
    failure_action = "server stopped"
    stop_margin = 1.0

    def __init__(self, sink: Sink, *, count: int | None = None) -> None:
        super().__init__(sink, count=count)
        self.waker = Waker()
        self.grace = 1.0
        self._thread: threading.Thread | None = None

    # -- to override ------------------------------------------------------------
    def bind(self) -> tuple[str, int]:
        raise NotImplementedError

    def listening(self, address: tuple[str, int]) -> Event | None:
        return None

    def serve(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the sockets and files :meth:`bind` opened."""

    def finish(self) -> None:
        """After the loop ended, before :meth:`close`: last counts, last events."""

    # -- the life cycle ---------------------------------------------------------------
    def _start(self) -> tuple[str, int]:
        try:
            address = self.bind()
        except BaseException:
            self.close()
            self.waker.close()  # a failed start (address in use, ...) leaks nothing
            raise
        event = self.listening(address)
        if event is not None:
            self.emit(event)
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return address

    def _run(self) -> None:
        try:
            self.serve()
        except Exception as exc:  # stdout closed under --json, a bug: stop, exit 1
            from netkit.net import describe_error

            self.fail(describe_error(exc, self.failure_action))

    def _stop(self, grace: float) -> None:
        self.grace = grace
        self.waker.wake()
        if self._thread is not None:
            # in slices, as wait() does: a second Ctrl-C during the grace must
            # run its handler now, not when the grace is over
            deadline = time.monotonic() + max(grace, 0.1) + self.stop_margin
            while self._thread.is_alive() and (left := deadline - time.monotonic()) > 0:
                self._thread.join(min(left, SIGNAL_SLICE))
        try:
            self.finish()
        finally:
            self.close()
            self.waker.close()

    # -- waking ------------------------------------------------------------------------
    def request_stop(self) -> None:
        super().request_stop()
        self.waker.wake()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

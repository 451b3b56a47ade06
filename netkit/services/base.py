"""What every server service shares: start / address / stop, counting, stop requests.

A service is started on a port (0 in tests), tells its bound ``address``,
and stops within a bounded time, the way CPython's socketserver tests drive
their servers::

    with UdpEchoServer(sink, port=0) as server:
        host, port = server.address
        ...

The CLI calls :meth:`start`, then :meth:`wait` until ``--count`` is reached
or a signal calls :meth:`request_stop`, then :meth:`stop`.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType

from netkit.events import Event, Sink, Summary


class Service:
    """Base class: subclasses implement :meth:`_start` and :meth:`_stop`."""

    def __init__(self, sink: Sink, *, count: int | None = None) -> None:
        self.sink = sink
        self.count = count
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._address: tuple[str, int] | None = None
        self._started = False
        self._stopped = False
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

    def start(self) -> Service:
        self._address = self._start()
        self._started = True
        return self

    def emit(self, event: Event) -> None:
        self.sink(event)

    def bump(self, key: str, n: int = 1) -> int:
        with self._counts_lock:
            self.counts[key] += n
            return self.counts[key]

    def handled(self) -> None:
        """Count one handled request; request a stop when ``count`` is reached."""
        done = self.bump("handled")
        if self.count is not None and done >= self.count:
            self._stop_requested.set()

    def fail(self, message: str) -> None:
        """Record a runtime failure (the command exits 1 with it) and request a stop."""
        if self.failure is None:
            self.failure = message
        self._stop_requested.set()

    def request_stop(self) -> None:
        """Ask the service to stop (safe from a signal handler or any thread)."""
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested (``--count`` reached, signal); True if so.

        Waits in short slices: a signal delivered to another thread of the
        process only runs its Python handler once the main thread wakes up,
        and a lock wait without a timeout would never wake up for it.
        """
        if timeout is not None:
            return self._stop_requested.wait(timeout)
        while not self._stop_requested.wait(0.1):
            pass
        return True

    def stop(self, grace: float = 1.0) -> None:
        if self._stopped or not self._started:
            return
        self._stopped = True
        self._stop_requested.set()
        self._stop(grace)

    def summary(self, reason: str = "stopped") -> Summary:
        with self._counts_lock:
            return Summary(counts=dict(self.counts), reason=reason)

    def __enter__(self) -> Service:
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

"""What upper.py still uses until it moves onto :mod:`netkit.services.loops`.

Shared machinery of the stream servers: a background loop, a wake-up pipe,
and an accept loop that backs off on EMFILE instead of spinning.
"""

from __future__ import annotations

import errno
import os
import threading
import time

from netkit.services.core import Service
from netkit.services.loops import ACCEPT_BATCH as ACCEPT_BATCH
from netkit.services.loops import RESOURCE_ERRNOS as RESOURCE_ERRNOS
from netkit.services.loops import resource_notice as resource_notice
from netkit.services.loops import set_io_timeouts as set_io_timeouts

#: accept() errors about one connection that went away before it was accepted
TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ETIMEDOUT}
)
REPORT_INTERVAL = 1.0


class RateLimit:
    """At most one report per *interval* seconds for each key; the rest are counted."""

    def __init__(self, interval: float = REPORT_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self.suppressed = 0

    def due(self, key: str = "") -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self.suppressed += 1
            return False
        self._last[key] = now
        return True


class Backoff:
    """Exponential back-off after resource errors (EMFILE), reported at most once a second.

    The pause is capped at one second, so a server answers again within
    about a second of descriptors coming free.
    """

    def __init__(self, first: float = 0.05, limit: float = 1.0) -> None:
        self.first = first
        self.limit = limit
        self.delay = 0.0
        self.resume_at = 0.0
        self.reports = RateLimit()

    @property
    def active(self) -> bool:
        return self.delay > 0 and time.monotonic() < self.resume_at

    def hit(self) -> float:
        """Record a failure; return how long to wait before accepting again."""
        self.delay = self.first if self.delay == 0 else min(self.delay * 2, self.limit)
        self.resume_at = time.monotonic() + self.delay
        return self.delay

    def ok(self) -> None:
        self.delay = 0.0

    def report_due(self) -> bool:
        """True when this failure should be logged (not within a second of the last)."""
        return self.reports.due()

    def remaining(self) -> float:
        return max(self.resume_at - time.monotonic(), 0.0)


class LoopService(Service):
    """A service whose loop runs in one background thread and can be woken up.

    :meth:`request_stop` (safe from a signal handler) also writes to a pipe
    the loop watches, so a stop takes effect at once rather than at the
    next timeout.
    """

    thread_name = "netkit-loop"

    def __init__(self, sink: object, *, count: int | None = None) -> None:
        super().__init__(sink, count=count)  # type: ignore[arg-type]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None

    def start(self) -> Service:
        try:
            return super().start()
        except BaseException:
            self.close_wake()  # a failed start (address in use, ...) leaks nothing
            raise

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already pending, or closed at stop

    def drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def request_stop(self) -> None:
        super().request_stop()
        self.wake()

    def handled(self, n: int = 1) -> None:
        super().handled(n)
        if self.stop_requested:
            self.wake()

    def fail(self, message: str) -> None:
        super().fail(message)
        self.wake()

    def run_in_background(self) -> None:
        self._thread = threading.Thread(
            target=self._guarded_run, name=self.thread_name, daemon=True
        )
        self._thread.start()

    def _guarded_run(self) -> None:
        try:
            self.run()
        except Exception as exc:  # pragma: no cover - a bug: report it, do not hang
            self.fail(f"internal error in {self.thread_name}: {type(exc).__name__}: {exc}")

    def run(self) -> None:
        raise NotImplementedError

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close_wake(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

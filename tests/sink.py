"""An event sink for service tests: collects events, waits for them with a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from netkit.events import Event

E = TypeVar("E", bound=Event)


class Collector:
    """Thread-safe list of the events a service emitted; :meth:`wait_for` never sleeps blindly."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type[E]) -> list[E]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(
        self,
        kind: type[E],
        n: int = 1,
        timeout: float = 5.0,
        where: Callable[[E], bool] = lambda e: True,
    ) -> list[E]:
        """Wait until *n* events of *kind* (matching *where*) arrived; AssertionError if not."""

        def found() -> list[E]:
            return [e for e in self.events if isinstance(e, kind) and where(e)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(found()) >= n, timeout):
                raise AssertionError(
                    f"expected {n} {kind.__name__} event(s) within {timeout} s, got {found()!r}"
                )
            return found()

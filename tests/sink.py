"""The event collector of the tests: keeps events, waits for them with a timeout."""

from __future__ import annotations

from collections.abc import Callable

from netkit.events import Recorder
from netkit.events.base import E


class Collector(Recorder):
    """:class:`netkit.events.Recorder` whose wait failures are test failures."""

    def wait_for(
        self,
        kind: type[E],
        n: int = 1,
        timeout: float = 10.0,
        where: Callable[[E], bool] = lambda e: True,
    ) -> list[E]:
        try:
            return super().wait_for(kind, n, timeout, where)
        except TimeoutError as exc:
            raise AssertionError(str(exc)) from None

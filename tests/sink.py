"""An event sink for service tests: collects events, waits for them with a timeout."""

from __future__ import annotations

from typing import TypeVar

from netkit.events import Event, Recorder

E = TypeVar("E", bound=Event)


class Collector(Recorder):
    """:class:`netkit.events.Recorder` whose wait failures are test failures."""

    def wait_for(self, kind, n=1, timeout=5.0, where=lambda e: True):  # type: ignore[no-untyped-def]
        try:
            return super().wait_for(kind, n, timeout, where)
        except TimeoutError as exc:
            raise AssertionError(str(exc)) from None

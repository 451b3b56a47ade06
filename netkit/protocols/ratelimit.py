"""A per-source token bucket: at most *rate* datagrams a second, bursts up to *burst*.

Sans-IO: the caller passes the time.  The table of sources is bounded, so a
flood of spoofed source addresses cannot grow memory without limit.
"""

from __future__ import annotations

from collections.abc import Hashable


class RateLimiter:
    def __init__(self, rate: float, *, burst: float | None = None, max_sources: int = 10_000):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate, 1.0))
        self.max_sources = max_sources
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, last time)

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token for *key* at time *now*; False when it has none left."""
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        if key not in self._buckets and len(self._buckets) >= self.max_sources:
            self._evict(now)
        self._buckets[key] = (tokens, now)
        return ok

    def _evict(self, now: float) -> None:
        """Forget sources whose bucket has refilled (they lose nothing); else the oldest half."""
        full = [
            k
            for k, (t, last) in self._buckets.items()
            if t + (now - last) * self.rate >= self.burst
        ]
        if not full:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            full = by_age[: max(1, len(by_age) // 2)]
        for k in full:
            del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


class ReportLimit:
    """At most one report per *interval* seconds for each key; the rest are counted.

    The one "at most once a second" rule of every server's warnings (EMFILE,
    fork failures, dropped datagrams).  Sans-IO: the caller passes the time.
    """

    __slots__ = ("_last", "_suppressed", "interval")

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def due(self, now: float, key: str = "") -> bool:
        """True: report now.  False: within *interval* of the last report (counted)."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        return True

    def take_suppressed(self, key: str = "") -> int:
        """How many reports of *key* were held back since this was last asked."""
        return self._suppressed.pop(key, 0)

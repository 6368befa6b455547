"""Token buckets for the gateway's rate limits; the clock is injected so tests can move
time instead of sleeping.

The clock must be monotonic (``time.monotonic`` in the gateway): a wall clock stepped
back would leave every bucket empty until it caught up again. Stepping back is still
survived: elapsed time is never negative.

The table of buckets is bounded: a full bucket is the same as no bucket, so full ones
are dropped as they are met, and at ``max_keys`` the least recently used one goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Buckets kept at most; past it the least recently used bucket is dropped.
DEFAULT_MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` tokens per second up to ``burst``; a rate of 0 turns the limit off."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float],
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max(max_keys, 1)
        self._clock = clock
        #: Least recently used first (a dict keeps insertion order; a use re-inserts).
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        bucket = self._refilled(key, now)
        self._buckets[key] = bucket  # most recently used now
        self._drop_idle(now, keep=key)
        if bucket.tokens + 1e-5 < cost:  # tolerate float error in the refill
            return False
        bucket.tokens -= cost
        return True

    def blocked(self, key: str, cost: float = 1.0) -> bool:
        """Would ``allow`` refuse now? Takes nothing (to refuse before doing the work)."""
        if self.rate <= 0:
            return False
        bucket = self._buckets.get(key)
        if bucket is None:
            return False
        return self._tokens(bucket, self._clock()) + 1e-5 < cost

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there again (for the Retry-After header)."""
        bucket = self._buckets.get(key)
        if bucket is None or self.rate <= 0:
            return 0.0
        return max(0.0, (cost - self._tokens(bucket, self._clock())) / self.rate)

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.at)  # a clock stepped back refills nothing
        return min(self.burst, bucket.tokens + elapsed * self.rate)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            while len(self._buckets) >= self.max_keys:
                # Full buckets were dropped already where met; this one loses its debt.
                del self._buckets[next(iter(self._buckets))]
            return _Bucket(self.burst, now)
        bucket.tokens = self._tokens(bucket, now)
        bucket.at = now
        return bucket

    def _drop_idle(self, now: float, keep: str) -> None:
        """Drop refilled buckets from the least recently used end: O(1) a call, and
        the table shrinks back once callers go quiet."""
        for _ in range(2):
            key = next(iter(self._buckets))
            if key == keep or self._tokens(self._buckets[key], now) < self.burst:
                return
            del self._buckets[key]

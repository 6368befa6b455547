"""Token buckets for the gateway's rate limits; the clock is injected so tests can move
time instead of sleeping.

The clock must be monotonic (``time.monotonic`` in the gateway): a wall clock stepped
back would leave every bucket empty until it caught up again. Stepping back is still
survived: elapsed time is never negative.

The table of buckets is bounded: a full bucket is the same as no bucket, so full ones
are dropped as they are met, and at ``max_keys`` the least recently used one goes.
With ``keep_debts`` a bucket that is not full is never dropped: at ``max_keys`` with no
full bucket to drop, a new key is refused until one refills. For a limit keyed by whom
it protects (the broadcasts of an appId), not by the caller, the callers choose the keys:
forgetting a drained bucket gave its allowance back to anyone who made enough new keys.
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
        keep_debts: bool = False,
    ) -> None:
        self.rate = rate
        self.keep_debts = keep_debts
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
        if bucket is None:  # the table is full of debts (keep_debts): none is forgiven
            return False
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
        if self.rate <= 0:
            return 0.0
        if bucket is None:
            oldest = self._oldest_debt(self._clock())
            return 0.0 if oldest is None else (self.burst - oldest) / self.rate
        return max(0.0, (cost - self._tokens(bucket, self._clock())) / self.rate)

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.at)  # a clock stepped back refills nothing
        return min(self.burst, bucket.tokens + elapsed * self.rate)

    def _oldest_debt(self, now: float) -> float | None:
        """With keep_debts and the table full: the tokens of the least recently used
        bucket, which holds the place a new key waits for; None when there is room."""
        if not self.keep_debts or len(self._buckets) < self.max_keys:
            return None
        tokens = self._tokens(next(iter(self._buckets.values())), now)
        return tokens if tokens < self.burst else None

    def _refilled(self, key: str, now: float) -> _Bucket | None:
        """The key's bucket refilled to ``now`` (taken out of the table), a new full one,
        or None: no place for a new one (keep_debts, and no bucket may be dropped)."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            while len(self._buckets) >= self.max_keys:
                if self._oldest_debt(now) is not None:
                    return None
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

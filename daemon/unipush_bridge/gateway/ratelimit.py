"""Token buckets for the gateway's rate limits, keyed by appId; the clock is injected
so tests can move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` tokens per second up to ``burst``; a rate of 0 turns the limit off."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens + 1e-5 < cost:  # tolerate float error in the refill
            return False
        bucket.tokens -= cost
        return True

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there again (for the Retry-After header)."""
        bucket = self._buckets.get(key)
        if bucket is None or self.rate <= 0:
            return 0.0
        return max(0.0, (cost - bucket.tokens) / self.rate)

"""gateway/ratelimit.py: token buckets per key, with a clock the test moves."""

from __future__ import annotations

import pytest

from unipush_bridge.gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drain(limiter: RateLimiter, key: str = "a") -> int:
    """How many calls pass before the first refusal (at most 10,000)."""
    for n in range(10_000):
        if not limiter.allow(key):
            return n
    return 10_000


def test_burst_then_refusal() -> None:
    limiter = RateLimiter(rate=1.0, burst=5, clock=Clock())
    assert [limiter.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow("a") is False


def test_refill_over_time() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=4, clock=clock)
    assert drain(limiter) == 4
    clock.now = 1_000.375  # 0.75 of a token
    assert limiter.allow("a") is False
    clock.now = 1_000.5  # 1.0
    assert limiter.allow("a") is True
    assert limiter.allow("a") is False
    clock.now = 1_001.5  # two more tokens
    assert drain(limiter) == 2


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=3, clock=clock)
    assert drain(limiter) == 3
    clock.now += 3600
    assert drain(limiter) == 3


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, clock=Clock())
    assert drain(limiter, "a") == 2
    assert limiter.allow("b") is True
    assert limiter.allow("b") is True
    assert limiter.allow("b") is False
    assert limiter.allow("a") is False


@pytest.mark.parametrize("rate", [0, 0.0, -1.0])
def test_rate_zero_is_unlimited(rate: float) -> None:
    clock = Clock()
    limiter = RateLimiter(rate=rate, burst=1, clock=clock)
    assert drain(limiter) == 10_000
    assert limiter.retry_after("a") == 0.0


def test_cost() -> None:
    limiter = RateLimiter(rate=1.0, burst=10, clock=Clock())
    assert limiter.allow("a", cost=7) is True
    assert limiter.allow("a", cost=4) is False  # a refusal takes nothing
    assert limiter.allow("a", cost=3) is True
    assert limiter.allow("a") is False


def test_burst_below_one_still_allows_one_call() -> None:
    limiter = RateLimiter(rate=1.0, burst=0, clock=Clock())
    assert limiter.burst == 1.0
    assert drain(limiter) == 1


def test_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=4.0, burst=2, clock=clock)
    assert limiter.retry_after("a") == 0.0  # never seen
    assert drain(limiter) == 2
    assert limiter.retry_after("a") == pytest.approx(0.25)
    assert limiter.retry_after("a", cost=2) == pytest.approx(0.5)
    clock.now = 1_000.125  # half a token
    assert limiter.allow("a") is False
    assert limiter.retry_after("a") == pytest.approx(0.125)
    clock.now = 1_000.25
    assert limiter.allow("a") is True


def test_retry_after_is_zero_with_tokens_left() -> None:
    limiter = RateLimiter(rate=1.0, burst=5, clock=Clock())
    assert limiter.allow("a") is True
    assert limiter.retry_after("a") == 0.0


def test_broadcast_style_limit_five_a_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=5 / 60, burst=5, clock=clock)
    assert drain(limiter) == 5
    assert limiter.retry_after("a") == pytest.approx(12.0)
    clock.now = 1_011.5
    assert limiter.allow("a") is False
    clock.now = 1_012.0 + 1e-9
    assert limiter.allow("a") is True
    clock.now = 1_072.0 + 1e-9
    assert drain(limiter) == 5


def test_keep_debts_never_evicts_a_drained_bucket() -> None:
    """A limit keyed by what callers name (an appId to broadcast to): new keys past
    max_keys must not give a drained bucket its burst back; they wait for a place."""
    clock = Clock()
    limiter = RateLimiter(rate=5 / 60, burst=5, clock=clock, max_keys=10, keep_debts=True)
    assert drain(limiter, "real") == 5
    refused = [limiter.allow(f"k{n}") for n in range(100)]
    assert refused.count(True) == 9  # the table's other places, then none
    assert limiter.allow("real") is False
    # a place frees when the least recently used bucket (k0: 4 tokens) is full again
    assert limiter.retry_after("k99") == pytest.approx(12.0)
    clock.now += 12.0 + 1e-6
    assert limiter.allow("new") is True
    assert drain(limiter, "real") == 1  # its debt kept: the one token of those 12 s

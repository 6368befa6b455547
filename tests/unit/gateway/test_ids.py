"""gateway/ids.py: task and message ids, time first, random after."""

from __future__ import annotations

import re
import time

from unipush_bridge.gateway.ids import RandomPool, ordered_id


def test_ids_are_32_hex_digits_unique_and_in_time_order() -> None:
    ids = [ordered_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    stamps = [int(i[:12], 16) for i in ids]
    assert stamps == sorted(stamps)  # the B-tree's right edge, not scattered pages
    assert abs(stamps[-1] - time.time() * 1000) < 5000


def test_the_pool_hands_out_each_byte_once_and_refills() -> None:
    pool = RandomPool(size=64)
    chunks = [pool.take(10) for _ in range(20)]  # past one refill and more
    assert all(len(c) == 10 for c in chunks)
    assert len(set(chunks)) == len(chunks)
    assert len(pool.take(100)) == 100  # larger than the pool: read at once

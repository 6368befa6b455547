"""Task and message ids: 32 hex digits, the first 12 the time in milliseconds.

Ordered by time, a new task's or message's row goes at the right edge of its
B-tree index in SQLite, so the commit of sixteen requests writes that page once
instead of sixteen scattered pages (issue 17 item 5); uni's own task ids look the
same way (``RASA_123_12469008ac33dd02815014631c00000f``). The other 80 bits come
from os.urandom, read 4 KiB at a time: one getrandom() call per ~400 ids, not two
per request.
"""

from __future__ import annotations

import os
import time


class RandomPool:
    """os.urandom, read ``size`` bytes at a time (one thread: the loop's)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._pool):
            self._pool, self._at = os.urandom(max(self._size, n)), 0
        out = self._pool[self._at : self._at + n]
        self._at += n
        return out


_POOL = RandomPool()


def ordered_id() -> str:
    """12 hex digits of milliseconds since the epoch (the real clock: an injected
    test clock orders nothing), then 20 random ones."""
    ms = int(time.time() * 1000) & 0xFFFF_FFFF_FFFF
    return f"{ms:012x}{_POOL.take(10).hex()}"

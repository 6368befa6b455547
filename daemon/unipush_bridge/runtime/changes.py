"""A counter of what a watcher of the daemon (the tray) shows moving: the link's state,
the cid, listeners, quiet hours, the history. The watcher's ``status`` call waits for
it to move (a long poll) instead of asking every second: an idle laptop should not
wake twice a second for a menu nobody has open."""

from __future__ import annotations

import asyncio
import contextlib

#: The longest one ``status`` call may wait for a change (s).
MAX_WAIT_S = 60.0


class Changes:
    def __init__(self) -> None:
        self.count = 0
        self._moved = asyncio.Event()

    def bump(self) -> None:
        self.count += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait(self, after: int, timeout: float) -> None:
        """Returns once the count is not ``after`` (at once if it is not now; a count
        from an earlier run of the daemon never matches for long), or after ``timeout``."""
        if self.count != after:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), min(timeout, MAX_WAIT_S))

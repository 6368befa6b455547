"""Daemons' acks, applied to the store a few milliseconds late and together.

An ack only lets the gateway forget what a daemon already has on disk. Applied at
once, its statements (count the task's receipts, delete the rows, move the cursor)
run between one push and the next sendMessage, which then waits for them; applied
together once per short window, they leave that path, and a stream's many acks
become one per cid. A crash inside the window loses nothing: the messages are sent
again from the older cursor and the daemon drops them by message id (the crash table
in docs/architecture.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

#: How long an ack may wait for others before it is applied (s).
ACK_WINDOW_S = 0.005

Key = tuple[str, str]  # (appid, cid)
Ack = tuple[str, str, int]  # (appid, cid, seq)


class DeferredAcks:
    """The highest pending ack per cid, applied by one timer per window, all of a
    window's in one call (one commit, or one Redis round trip for 20,000 daemons
    acking a broadcast)."""

    def __init__(
        self,
        apply: Callable[[list[Ack]], Awaitable[object]],
        failed: Callable[[str, str], object] = lambda appid, cid: None,
        window_s: float = ACK_WINDOW_S,
    ) -> None:
        self._apply = apply
        self._failed = failed
        self._window_s = window_s
        self._due: dict[Key, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: Windows being applied (a Redis round trip): a cursor read waits for them.
        self._applying: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, appid: str, cid: str, seq: int) -> None:
        """An ack the caller has checked (``seq`` was sent to this cid): acks are
        cumulative, so only the highest of a window is applied."""
        key = (appid, cid)
        if seq <= self._due.get(key, 0):
            return
        self._due[key] = seq
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window_s, self._fire)

    async def flush_one(self, appid: str, cid: str) -> None:
        """Now, for one cid: its link closes, or it registers again and its cursor is
        read, which must see every ack taken so far (a window's too, if it is on its
        way to the store)."""
        seq = self._due.pop((appid, cid), None)
        if seq is not None:
            await self._run([(appid, cid, seq)])
        if self._applying:
            await asyncio.wait(list(self._applying))

    def _fire(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)

    async def flush(self) -> None:
        """Now, for every cid (the timer, and the gateway's stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due, self._due = self._due, {}
        if due:
            await self._run([(appid, cid, seq) for (appid, cid), seq in due.items()])

    async def close(self) -> None:
        """The gateway stops: every ack applied, a window on its way too, before the
        store closes under it."""
        await self.flush()
        if self._applying:
            await asyncio.wait(list(self._applying))

    async def _run(self, acks: list[Ack]) -> None:
        try:
            await self._apply(acks)
        except Exception:
            if len(acks) > 1:  # one bad ack must not cost the others theirs
                for ack in acks:
                    await self._run([ack])
                return
            # the store failed: the cursor stays, the messages come again
            appid, cid, _ = acks[0]
            log.exception("could not apply an ack; its messages will be sent again", cid=cid)
            self._failed(appid, cid)

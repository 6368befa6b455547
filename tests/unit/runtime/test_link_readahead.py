"""runtime/link.py's ReadAhead: frames between the websocket reader and the batches,
bounded in count and size; nothing dropped, the end never waits."""

from __future__ import annotations

import asyncio

from unipush_bridge.runtime.link import ReadAhead


async def test_put_waits_while_full_in_bytes_and_goes_on_once_taken() -> None:
    frames = ReadAhead(max_frames=100, max_bytes=10)
    await frames.put("a" * 6)
    await frames.put("b" * 6)  # one over the size is let in: it was not full before
    third = asyncio.ensure_future(frames.put("c"))
    await asyncio.sleep(0)
    assert not third.done(), "put did not wait while full"
    frames.end()  # the end goes in even now
    assert await frames.batch(10, 8) == ["a" * 6]  # the first alone: b is past the size
    await asyncio.wait_for(third, 1)
    assert await frames.batch(10, 100) == ["b" * 6, None]
    assert await frames.batch(10, 100) == ["c"]


async def test_a_batch_is_cut_by_count_and_size_but_takes_at_least_one() -> None:
    frames = ReadAhead(max_frames=100, max_bytes=1000)
    for text in ("x" * 50, "y", "z", "w"):
        await frames.put(text)
    assert await frames.batch(10, 10) == ["x" * 50]  # bigger than a batch: alone
    assert await frames.batch(2, 10) == ["y", "z"]
    frames.end()
    assert await frames.batch(10, 10) == ["w", None]

"""The gateway applies daemons' acks late and together (issue 8 item 10): off the path
between one push and the next sendMessage, one application per cid per window."""

from __future__ import annotations

import asyncio

import pytest

from unipush_bridge.gateway.acks import DeferredAcks

Applied = list[tuple[str, str, int]]


def recorder(
    applied: Applied,
    fail: set[str] | None = None,
    failed: list[str] | None = None,
    calls: list[int] | None = None,
) -> DeferredAcks:
    async def apply(acks: Applied) -> None:
        if calls is not None:
            calls.append(len(acks))
        if fail and any(cid in fail for _, cid, _ in acks):
            raise OSError("disk I/O error")  # the whole call: nothing of it applied
        applied.extend(acks)

    def on_failure(appid: str, cid: str) -> None:
        if failed is not None:
            failed.append(cid)

    return DeferredAcks(apply, on_failure, window_s=0.02)


async def test_a_windows_acks_are_applied_once_per_cid_with_the_highest_seq() -> None:
    applied: Applied = []
    acks = recorder(applied)
    for seq in (1, 2, 5, 3):  # cumulative: a lower one after a higher one changes nothing
        acks.add("app", "c1", seq)
    acks.add("app", "c2", 7)
    assert applied == []  # not on the caller's path
    await asyncio.sleep(0.05)
    assert sorted(applied) == [("app", "c1", 5), ("app", "c2", 7)]
    acks.add("app", "c1", 9)  # the next window has a timer of its own
    await asyncio.sleep(0.05)
    assert applied[-1] == ("app", "c1", 9) and len(applied) == 3


async def test_a_windows_acks_go_to_the_store_in_one_call() -> None:
    """20,000 daemons acking a broadcast: one commit (one Redis round trip), not one
    per cid."""
    applied: Applied = []
    calls: list[int] = []
    acks = recorder(applied, calls=calls)
    for n in range(500):
        acks.add("app", f"c{n}", n + 1)
    await asyncio.sleep(0.05)
    assert calls == [500] and len(applied) == 500


async def test_flush_one_applies_that_cids_ack_now_and_only_once() -> None:
    """A link that closes, or a cid that registers again, reads its cursor after its
    acks: nothing waits for the timer."""
    applied: Applied = []
    acks = recorder(applied)
    acks.add("app", "c1", 4)
    acks.add("app", "c2", 6)
    await acks.flush_one("app", "c1")
    assert applied == [("app", "c1", 4)]
    await acks.flush_one("app", "c1")  # nothing left for it
    await asyncio.sleep(0.05)
    assert applied == [("app", "c1", 4), ("app", "c2", 6)]


async def test_flush_applies_everything_and_cancels_the_timer() -> None:
    applied: Applied = []
    acks = recorder(applied)
    acks.add("app", "c1", 2)
    await acks.flush()  # the gateway stops
    assert applied == [("app", "c1", 2)] and len(acks) == 0
    await asyncio.sleep(0.05)
    assert applied == [("app", "c1", 2)]


async def test_a_failed_ack_is_logged_and_the_others_still_apply(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A store that fails leaves that cursor where it was (the messages are sent again
    and the daemon drops them by id) and is reported, so the gateway closes that cid's
    link as a failure inside its session does; the other cids' acks go in."""
    applied: Applied = []
    failed: list[str] = []
    calls: list[int] = []
    acks = recorder(applied, fail={"bad"}, failed=failed, calls=calls)
    acks.add("app", "bad", 3)
    acks.add("app", "good", 8)
    await acks.flush()
    assert applied == [("app", "good", 8)]
    assert failed == ["bad"]
    assert calls == [2, 1, 1]  # the window's call failed: each ack again on its own
    assert "could not apply an ack" in capsys.readouterr().out


async def test_close_waits_for_a_window_on_its_way_to_the_store() -> None:
    """The gateway's stop closes the store after acks.close(): a window whose apply is
    still waiting for Redis must be finished by then, not cut off under it."""
    applied: Applied = []
    started, release = asyncio.Event(), asyncio.Event()

    async def apply(acks: Applied) -> None:
        started.set()
        await release.wait()
        applied.extend(acks)

    acks = DeferredAcks(apply, window_s=0.001)
    acks.add("app", "c1", 3)
    await asyncio.wait_for(started.wait(), 2)  # the window fired; its apply waits
    acks.add("app", "c2", 4)  # a new window's ack, not yet due
    closing = asyncio.create_task(acks.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    release.set()
    await asyncio.wait_for(closing, 2)
    assert sorted(applied) == [("app", "c1", 3), ("app", "c2", 4)]

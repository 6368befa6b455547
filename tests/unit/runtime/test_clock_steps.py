"""issue 10 item 10 (scheduled half): delayed notifications after a wall-clock step.

The driver runs on injected wall-clock and monotonic clocks (a real SQLite store, the
recording notifier of test_driver); the timer's own waits are real but short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.runtime.test_driver import APPID, Screen
from unipush_bridge.runtime import driver as driver_mod
from unipush_bridge.runtime.core import Config, Core, Schedule, Unschedule
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.store import Store


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def step(self, seconds: float) -> None:
        """The wall clock is set (NTP, the user, a restored VM); no time passes."""
        self.wall += seconds

    def pass_(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.sqlite3")
    s.save_identity("embedded", APPID, "c" * 32, 0)
    return s


@contextlib.asynccontextmanager
async def clocked_driver(
    core: Core, store: Store, clocks: Clocks
) -> AsyncIterator[tuple[Driver, Screen]]:
    """A started driver that reads its wall-clock and monotonic time from ``clocks``;
    the timer looks at the clocks every 10 ms (the caller patches CLOCK_CHECK_S)."""
    screen = Screen()
    d = Driver(
        core=core,
        store=store,
        notifier=screen,
        appid=APPID,
        gateway_key="embedded",
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )
    await d.start()
    try:
        yield d, screen
    finally:
        await d.stop(0.1)


@pytest.fixture
async def driver(
    store: Store, clocks: Clocks, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Driver, Screen]]:
    monkeypatch.setattr(driver_mod, "CLOCK_CHECK_S", 0.01)
    ids = iter(f"s{n}" for n in range(100))
    async with clocked_driver(Core(Config(), lambda: next(ids)), store, clocks) as running:
        yield running


async def soon(check: object, rounds: int = 100) -> bool:
    for _ in range(rounds):
        if callable(check) and check():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_step_forward_fires_what_is_now_due(
    driver: tuple[Driver, Screen], clocks: Clocks
) -> None:
    """issue 10 item 10: the wait was for an hour of monotonic time; the wall clock
    jumping past the due time (or a resume from suspend) fires it at once."""
    d, screen = driver
    await d.create_push_message({"content": "in an hour", "delay": 3600})
    await asyncio.sleep(0.05)
    assert screen.shown == []
    clocks.step(3601)
    assert await soon(lambda: [r.body for r in screen.shown] == ["in an hour"])


async def test_a_step_back_neither_fires_early_nor_waits_twice(
    driver: tuple[Driver, Screen], clocks: Clocks, store: Store
) -> None:
    """issue 10 item 10: ten seconds stay ten seconds when the wall clock goes back
    ten minutes; the new due time is kept on disk for the next start."""
    d, screen = driver
    await d.create_push_message({"content": "in ten seconds", "delay": 10})
    ((_, _, due),) = store.scheduled()
    clocks.pass_(2)
    await asyncio.sleep(0.05)
    clocks.step(-600)
    await asyncio.sleep(0.05)
    assert screen.shown == []
    ((_, _, rearmed),) = store.scheduled()
    assert rearmed == pytest.approx(due - 600)
    clocks.pass_(7)
    await asyncio.sleep(0.05)
    assert screen.shown == []  # not early: one second to go
    clocks.pass_(1.5)
    assert await soon(lambda: [r.body for r in screen.shown] == ["in ten seconds"])
    assert store.scheduled() == []


def test_the_core_moves_every_due_time_by_the_step() -> None:
    """The re-arm is the core's decision (it owns what is scheduled); the driver only
    writes the rows it is given."""
    ids = iter(f"s{n}" for n in range(10))
    c = Core(Config(), lambda: next(ids))
    c.create_push_message({"content": "a", "delay": 10}, 1000.0)
    c.create_push_message({"content": "b", "delay": 20}, 1000.0)
    actions = c.wall_clock_stepped(-600.0)
    assert sorted(due for _, due in c.scheduled.values()) == [410.0, 420.0]
    rows = [a for a in actions if isinstance(a, Schedule)]
    assert sorted((a.sched_id, a.due) for a in rows) == sorted(
        (sid, due) for sid, (_, due) in c.scheduled.items()
    )
    # Each row is moved by one write: a delete then an insert were two commits, and a
    # kill or a full disk between them lost the notification.
    assert [a for a in actions if isinstance(a, Unschedule)] == []
    assert Core(Config(), lambda: "x").wall_clock_stepped(5.0) == []  # nothing scheduled


async def test_a_step_back_while_nothing_was_scheduled_moves_no_later_delay(
    driver: tuple[Driver, Screen], clocks: Clocks, store: Store
) -> None:
    """The timer does not look at the clocks while nothing is scheduled; a step back
    then must not be applied to the next delayed notification, whose due time is set
    from the clock as it is now (it fired at once, an hour "overdue")."""
    d, screen = driver
    await asyncio.sleep(0.05)
    clocks.step(-3600)
    await asyncio.sleep(0.05)
    await d.create_push_message({"content": "in ten minutes", "delay": 600})
    await asyncio.sleep(0.05)
    assert screen.shown == []
    ((_, _, due),) = store.scheduled()
    assert due == pytest.approx(clocks.wall + 600)

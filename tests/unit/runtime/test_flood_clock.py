"""issue 10 item 10 follow-up (issue 12): the flood's window and summary are durations
and run on the monotonic clock; a step of the wall clock changes neither. Before, the
driver gave the core wall-clock time for them: a step back of ten minutes during a
flood summed up every notification for ten minutes more.

The driver on injected clocks, a real SQLite store and the recording notifier.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unipush_bridge.runtime import driver as driver_mod
from unipush_bridge.runtime.core import Config, Core
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.store import Store

from .test_clock_steps import Clocks, clocked_driver, soon
from .test_driver import APPID, Screen, msg

FLOOD = Config(app_name="Desk", flood_threshold=3, flood_window=10.0)


@pytest.fixture
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Driver, Screen, Clocks]]:
    monkeypatch.setattr(driver_mod, "CLOCK_CHECK_S", 0.01)
    clocks = Clocks()
    store = Store(tmp_path / "state.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    counter = itertools.count(1)
    core = Core(FLOOD, lambda: f"id{next(counter)}")
    async with clocked_driver(core, store, clocks) as (d, screen):
        yield d, screen, clocks
    store.close()


seq = itertools.count(1)


async def push(d: Driver, *ns: int) -> None:
    await d.hand_on(d.record([(next(seq), f"m{n}", msg(n)) for n in ns]))


async def test_a_step_back_does_not_stretch_the_flood_window(
    running: tuple[Driver, Screen, Clocks],
) -> None:
    """Three shown, the wall clock set back ten minutes, eleven seconds pass: the
    window is over and the next push is shown on its own, not summed up."""
    d, screen, clocks = running
    await push(d, 0, 1, 2)
    clocks.step(-600)
    clocks.pass_(11)
    await push(d, 3)
    assert [r.body for r in screen.shown] == ["c0", "c1", "c2", "c3"]
    assert d.core.counters["coalesced"] == 0


async def test_a_step_forward_does_not_end_the_flood_window(
    running: tuple[Driver, Screen, Clocks],
) -> None:
    """The wall clock jumps an hour ahead one second into a flood: the window still has
    nine seconds to run, so the next push is summed up."""
    d, screen, clocks = running
    await push(d, 0, 1, 2)
    clocks.pass_(1)
    clocks.step(3600)
    await push(d, 3)
    assert [r.body for r in screen.shown] == ["c0", "c1", "c2"]
    assert d.core.counters["coalesced"] == 1


async def test_the_summary_comes_a_debounce_later_whatever_the_wall_clock_does(
    running: tuple[Driver, Screen, Clocks],
) -> None:
    """Summed up, then the wall clock set back ten minutes: the summary is still shown
    once a second of monotonic time has passed, not ten minutes later."""
    d, screen, clocks = running
    await push(d, 0, 1, 2, 3, 4)
    clocks.step(-600)
    clocks.pass_(1.1)
    assert await soon(lambda: [r.body for r in screen.shown][-1:] == ["2 more messages: t4"])

"""issue 12 item 12: the order of a flood's summary and the messages after it.

A summary ("N more messages: <latest title>") stands for messages that arrived before
any message shown after it: when the flood window moves on while a summary waits for
its debounce, the summary is shown first, then the newer message. Sans-I/O, with the
simulator of test_core.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from unipush_bridge.runtime import core
from unipush_bridge.runtime.core import Config, Core
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.store import Store

from .test_core import Sim, ids
from .test_driver import APPID, Screen, msg

#: As the issue saw it, smaller: 3 shown per 10 s, then summed up.
FLOOD = Config(app_name="Desk", flood_threshold=3, flood_window=10.0)


def screen(s: Sim) -> list[str]:
    return [x.notice.body if x.notice.title == "Desk" else x.notice.title for x in s.shown]


def test_summary_comes_before_newer_messages_when_the_window_moves_on() -> None:
    """issue 12 item 12: t0..t2 shown, t3 and t4 summed up just before the window ends;
    t5 and t6 arrive once it has moved on (before the summary's debounce): the
    summary is shown before them, not after."""
    s = Sim(Core(FLOOD, ids()))
    s.push(*(s.record(n) for n in range(3)), now=0.0)
    s.push(s.record(3), now=9.5)
    s.push(s.record(4), now=9.6)
    assert s.core.summary_due() == 10.6  # the summary waits its debounce
    s.push(s.record(5), now=10.1)  # the window has moved on: t5 may be shown alone
    s.push(s.record(6), now=10.2)
    s.run(s.core.tick(10.6))
    assert screen(s) == ["t0", "t1", "t2", "2 more messages: t4", "t5", "t6"]
    assert s.core.summary_due() is None  # the summary was shown once, not again


def test_a_summary_stands_only_for_older_messages() -> None:
    """The summary's text and click are the latest summed-up message, never a newer one."""
    s = Sim(Core(FLOOD, ids()))
    s.push(*(s.record(n) for n in range(4)), now=0.0)  # t3 summed up
    s.push(s.record(4), now=10.5)  # shown: after the summary of t3
    summaries = [x for x in s.shown if x.notice.title == "Desk"]
    assert [x.notice.body for x in summaries] == ["1 more message: t3"]
    s.run(s.core.activated(summaries[0].ticket))
    assert s.pending_click is not None and s.pending_click["payload"] == {"n": 3}


def test_in_one_batch_the_summary_goes_before_the_first_message_shown_after_it() -> None:
    """A batch that straddles the window's end (a backlog after a reconnect)."""
    s = Sim(Core(FLOOD, ids()))
    s.push(*(s.record(n) for n in range(5)), now=0.0)  # t3, t4 summed up
    s.push(*(s.record(n) for n in range(5, 9)), now=10.0)  # t5..t7 shown, t8 summed up
    assert screen(s) == ["t0", "t1", "t2", "2 more messages: t4", "t5", "t6", "t7"]
    s.run(s.core.tick(s.core.summary_due() or 0.0))
    assert screen(s)[-1] == "1 more message: t8"
    assert isinstance(s.shown[-1], core.Show)


async def test_the_driver_shows_the_summary_before_the_newer_message(tmp_path: Path) -> None:
    """issue 12 item 12 through the driver, a real SQLite store and the recording
    notifier: what reaches the notification server is in the defined order."""
    clock = [0.0]
    counter = itertools.count(1)
    screen = Screen()
    store = Store(tmp_path / "state.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    d = Driver(
        core=Core(FLOOD, lambda: f"id{next(counter)}"),
        store=store,
        notifier=screen,
        appid=APPID,
        gateway_key="embedded",
        clock=lambda: clock[0],
        monotonic=lambda: clock[0],
    )
    await d.start()
    seq = itertools.count(1)

    async def at(now: float, *ns: int) -> None:
        clock[0] = now
        fresh = d.record([(next(seq), f"m{n}", msg(n)) for n in ns])
        await d.hand_on(fresh)

    await at(0.0, 0, 1, 2)
    await at(9.5, 3)
    await at(9.6, 4)
    await at(10.1, 5)
    assert [r.body for r in screen.shown] == ["c0", "c1", "c2", "2 more messages: t4", "c5"]
    await d.stop(0.1)
    store.close()

"""issue 12 item 11: a delayed notification that falls due with no notification server
is recorded in the history as not shown (with the reason), counted in status, and
tried again every UNSHOWN_RETRY_S: a server back within UNSHOWN_GRACE_S shows it then,
in the same history entry. Before, it left one log line and was gone.

The core as tables (sans-I/O, the simulator of test_core), then the driver on a real
SQLite store with injected clocks (the recording notifier of test_driver).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unipush_bridge.runtime import core
from unipush_bridge.runtime import driver as driver_mod
from unipush_bridge.runtime.core import RETRY_KEY, UNSHOWN_GRACE_S, UNSHOWN_RETRY_S, Config, Core
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.store import Store

from .test_clock_steps import Clocks, clocked_driver, soon
from .test_core import Sim, ids
from .test_driver import APPID, Screen


def scheduled_sim() -> Sim:
    s = Sim(Core(Config(app_name="Desk"), ids()), screen_ok=False)
    s.run(s.core.create_push_message({"content": "later", "payload": {"k": 1}, "delay": 10}, 0))
    return s


def test_not_shown_when_due_is_recorded_counted_and_tried_again() -> None:
    """issue 12 item 11: history entry with the reason, the counter, a retry on disk."""
    s = scheduled_sim()
    s.run(s.core.tick(10.0))
    (remember,) = s.of(core.Remember)
    assert remember.not_shown == "no server"
    assert remember.content == "later" and remember.data["payload"] == {"k": 1}
    assert s.core.counters["not_shown"] == 1
    retry = [a for a in s.of(core.Schedule) if RETRY_KEY in a.params]
    assert len(retry) == 1
    assert retry[0].due == 10.0 + UNSHOWN_RETRY_S
    assert retry[0].params[RETRY_KEY] == {"due": 10.0, "entry": remember.entry}


def test_a_server_back_within_the_grace_shows_it_in_the_same_entry() -> None:
    """issue 12 item 11: shown on the retry after the server came back; the history
    entry that said 'not shown' now says shown, and a click marks that entry."""
    s = scheduled_sim()
    s.run(s.core.tick(10.0))
    first = s.of(core.Remember)[0].entry
    s.run(s.core.tick(10.0 + UNSHOWN_RETRY_S))  # still no server: no new entry
    assert len(s.of(core.Remember)) == 1
    s.screen_ok = True
    s.run(s.core.tick(10.0 + 2 * UNSHOWN_RETRY_S))
    later = s.of(core.Remember)[-1]
    assert (later.entry, later.not_shown) == (first, None)
    assert s.shown[-1].notice.body == "later"
    assert s.core.counters["not_shown"] == 1 and s.core.counters["shown_late"] == 1
    assert s.core.scheduled == {}
    s.run(s.core.activated(s.shown[-1].ticket))
    assert s.of(core.MarkClicked) == [core.MarkClicked(first)]
    assert s.pending_click == {
        "title": "Desk",
        "content": "later",
        "__UUID__": first,  # the notification's own id: its history entry's
        "appid": "",  # this test's Config names no appId; the daemon's always does
        "payload": {"k": 1},
    }


def test_no_server_within_the_grace_gives_up_once() -> None:
    s = scheduled_sim()
    now = 10.0
    while s.core.scheduled:
        s.run(s.core.tick(now))
        now += UNSHOWN_RETRY_S
    assert now <= 10.0 + UNSHOWN_GRACE_S + 2 * UNSHOWN_RETRY_S
    assert [w.text for w in s.of(core.Warn)][-1] == "scheduled notification not shown; gave up"
    assert len(s.of(core.Remember)) == 1  # recorded as not shown, once
    assert s.core.counters["not_shown"] == 1


def test_a_retry_found_after_the_grace_is_not_shown() -> None:
    """A daemon down past the grace: the retry on disk is old news when it starts."""
    s = Sim(Core(Config(), ids()))
    params = {"content": "old", "delay": 0, RETRY_KEY: {"due": 0.0, "entry": "e1"}}
    s.run(s.core.restore([], scheduled=[("r1", params, 30.0)]))
    s.run(s.core.tick(UNSHOWN_GRACE_S + 60))
    assert s.shown == []
    assert core.Unschedule("r1") in s.done


def test_a_callers_own_retry_key_is_dropped() -> None:
    s = Sim(Core(Config(), ids()))
    s.run(s.core.create_push_message({"content": "x", "delay": 5, RETRY_KEY: {"due": 1}}, 0))
    (sched,) = s.of(core.Schedule)
    assert RETRY_KEY not in sched.params


# -- through the driver, on a real store ------------------------------------------------------


@pytest.fixture
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Driver, Screen, Store, Clocks]]:
    monkeypatch.setattr(driver_mod, "CLOCK_CHECK_S", 0.01)
    clocks = Clocks()
    store = Store(tmp_path / "state.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    async with clocked_driver(Core(Config(), ids()), store, clocks) as (d, screen):
        yield d, screen, store, clocks
    store.close()


async def test_the_driver_records_it_and_shows_it_when_the_server_is_back(
    running: tuple[Driver, Screen, Store, Clocks],
) -> None:
    """issue 12 item 11: `notify --delay 10` with no server: history says not shown
    with the reason, status counts it; the server back, the next retry shows it."""
    d, screen, store, clocks = running
    screen.fail = "no notification server"
    await d.create_push_message({"content": "backup done", "delay": 10})
    clocks.pass_(10)
    assert await soon(lambda: d.core.counters["not_shown"] == 1)
    (entry,) = store.history(10)
    assert entry["shown"] is False and entry["not_shown"] == "no notification server"
    assert entry["content"] == "backup done"
    assert d.inbox()["waiting_for_notification_server"] == 1
    assert len(store.scheduled()) == 1  # the retry is on disk: it survives a restart
    screen.fail = None
    clocks.pass_(UNSHOWN_RETRY_S)
    assert await soon(lambda: [r.body for r in screen.shown] == ["backup done"])
    await asyncio.sleep(0.02)
    (entry2,) = store.history(10)
    assert entry2["id"] == entry["id"] and entry2["shown"] is True
    assert d.core.counters["shown_late"] == 1
    assert d.inbox()["waiting_for_notification_server"] == 0
    assert store.scheduled() == []

"""driver.py in process: a real SQLite store, a recording notifier, listeners in memory.

The notifier stands in for D-Bus (the e2e suite runs the real one on dunst); all else
is the code the daemon runs.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.errors import ApiFail, NotifyError
from unipush_bridge.runtime.core import Config, Core
from unipush_bridge.runtime.driver import Driver, Media
from unipush_bridge.runtime.notifier import NotificationRequest
from unipush_bridge.runtime.store import DONE, HELD, PENDING, Store
from unipush_bridge.wire.gateway import PushMessage

APPID = "__UNI__TEST"


class Screen:
    """Records what would be shown; ``fail`` makes the server refuse."""

    def __init__(self) -> None:
        self.shown: list[NotificationRequest] = []
        self.fail: str | None = None
        self.available = True
        self.on_back: Callable[[], None] | None = None

    async def start(self) -> None:
        pass

    async def show(self, request: NotificationRequest) -> str:
        if self.fail:
            raise NotifyError(self.fail)
        self.shown.append(request)
        return str(len(self.shown))

    def click(self, index: int = -1) -> None:
        on_clicked = self.shown[index].on_clicked
        assert on_clicked is not None
        on_clicked()


class App:
    """A listener; ``stuck`` never holds what it is sent."""

    def __init__(self, stuck: bool = False) -> None:
        self.events: list[tuple[dict[str, Any], str | None]] = []
        self.stuck = stuck
        self.closed = False
        #: False: the app went away before it acknowledged anything.
        self.acked = True

    def deliver(self, event: dict[str, Any], push_id: str | None = None) -> None:
        self.events.append((event, push_id))

    async def held(self, push_ids: tuple[str, ...] = ()) -> bool:
        if self.stuck:
            await asyncio.Event().wait()
        return self.acked

    def close(self) -> None:
        self.closed = True

    def payloads(self) -> list[Any]:
        return [e["data"].get("payload") for e, _ in self.events]


def msg(n: int, **fields: Any) -> PushMessage:
    return PushMessage.parse({"title": f"t{n}", "content": f"c{n}", "payload": {"n": n}, **fields})


def make(store: Store, screen: Screen, **config: Any) -> Driver:
    counter = itertools.count(1)
    return Driver(
        core=Core(Config(**config), lambda: f"id{next(counter)}"),
        store=store,
        notifier=screen,
        appid=APPID,
        gateway_key="embedded",
        hold_timeout=0.05,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.sqlite3")
    s.save_identity("embedded", APPID, "c" * 32, 0)
    return s


@pytest.fixture
def screen() -> Screen:
    return Screen()


@pytest.fixture
async def driver(store: Store, screen: Screen) -> AsyncIterator[Driver]:
    d = make(store, screen)
    await d.start()
    yield d
    await d.stop(0.5)


async def deliver(d: Driver, *pushes: tuple[int, str, PushMessage]) -> None:
    fresh = d.record(list(pushes))
    await d.hand_on(fresh, len(pushes) - len(fresh))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def dropped(app: App) -> None:
    """Wait until the driver has cut a stuck listener (its hold timeout is 50 ms)."""
    for _ in range(50):
        if app.closed:
            break
        await asyncio.sleep(0.01)
    await settle()
    assert app.closed


# -- the redelivery filter ------------------------------------------------------------------


async def test_a_redelivered_push_reaches_the_app_once(driver: Driver, store: Store) -> None:
    app = App()
    await driver.subscribe(app)
    await deliver(driver, (1, "m1", msg(1)))
    await deliver(driver, (1, "m1", msg(1)))  # the gateway sends it again after a reconnect
    await deliver(driver, (2, "m1", msg(1)), (3, "m2", msg(2)))
    await settle()
    assert app.payloads() == [{"n": 1}, {"n": 2}]
    assert driver.core.counters["duplicates"] == 2
    assert driver.core.counters["received"] == 2


async def test_record_commits_the_cursor_with_the_pushes(driver: Driver, store: Store) -> None:
    driver.record([(5, "m5", msg(5))])
    assert store.identity("embedded", APPID)[1] == 5
    assert store.unfinished(PENDING) == [("m5", msg(5).to_dict())]


# -- handing on -------------------------------------------------------------------------


async def test_receive_marks_done_and_status_shows_nothing_left(
    driver: Driver, store: Store
) -> None:
    app = App()
    await driver.subscribe(app)
    await deliver(driver, (1, "m1", msg(1)))
    await settle()
    assert app.events[0][1] == "m1"
    assert store.count(DONE) == 1
    assert driver.inbox() == {
        "held_for_listener": 0,
        "backlog": 0,
        "scheduled": 0,
        "waiting_for_notification_server": 0,
        "held_full": False,
    }


async def test_no_listener_shows_a_notification_and_a_click_waits(
    driver: Driver, store: Store, screen: Screen
) -> None:
    await deliver(driver, (1, "m1", msg(1)))
    assert [r.title for r in screen.shown] == ["t1"]
    screen.click()
    await settle()
    assert store.pending_click(APPID) == {
        "unipush_version": "2.0",
        "title": "t1",
        "content": "c1",
        "payload": {"n": 1},
        "__UUID__": "m1",
        "appid": "",  # this test's Config names no appId; the daemon's always does
    }
    assert store.history(5)[0]["clicked"] is True
    app = App()
    await driver.subscribe(app)
    assert [e["type"] for e, _ in app.events] == ["click"]
    await settle()  # cleared once the app has it
    assert store.pending_click(APPID) is None


async def test_no_server_and_no_listener_holds_until_one_subscribes(
    driver: Driver, store: Store, screen: Screen
) -> None:
    screen.fail = "no notification server"
    await deliver(driver, (1, "m1", msg(1)), (2, "m2", msg(2)))
    assert store.count(HELD) == 2
    inbox = driver.inbox()
    assert (inbox["held_for_listener"], inbox["backlog"]) == (2, 2)
    app = App()
    await driver.subscribe(app)
    await settle()
    assert app.payloads() == [{"n": 1}, {"n": 2}]
    assert store.count(HELD) == 0 and store.count(DONE) == 2


async def test_pushes_held_for_want_of_a_server_are_shown_when_one_is_back(
    driver: Driver, store: Store, screen: Screen
) -> None:
    """A notification server that was gone a moment (dunst restarted) and is back: the
    pushes that came meanwhile with no app listening reach the screen then, as a phone
    shows what came while its notification shade was busy. Those held on purpose (no
    phone maker's channel) stay held for the next app."""
    screen.fail = "no notification server"
    await deliver(driver, (1, "m1", msg(1)), (2, "m2", msg(2)), (3, "m3", msg(3, offline="hold")))
    assert store.count(HELD) == 3 and screen.shown == []
    screen.fail = None
    assert screen.on_back is not None
    screen.on_back()
    await settle()
    assert [r.title for r in screen.shown] == ["t1", "t2"]
    assert store.count(HELD) == 1 and store.count(DONE) == 2
    app = App()
    await driver.subscribe(app)
    await settle()
    assert app.payloads() == [{"n": 3}]


async def test_a_stopped_driver_is_told_of_no_server_coming_back(
    store: Store, screen: Screen
) -> None:
    """A server found during shutdown must not start shows after the store's writer
    has stopped."""
    d = make(store, screen)
    await d.start()
    assert screen.on_back is not None
    await d.stop(0.1)
    assert screen.on_back is None


async def test_a_server_back_shows_nothing_a_listener_took_meanwhile(
    driver: Driver, store: Store, screen: Screen
) -> None:
    screen.fail = "no notification server"
    await deliver(driver, (1, "m1", msg(1)))
    app = App()
    await driver.subscribe(app)
    await settle()
    driver.unsubscribe(app)
    screen.fail = None
    assert screen.on_back is not None
    screen.on_back()
    await settle()
    assert screen.shown == [] and app.payloads() == [{"n": 1}]
    assert store.count(DONE) == 1


async def test_a_server_back_after_a_flood_shows_what_the_flood_let_through(
    store: Store, screen: Screen
) -> None:
    """An outage during a flood: the pushes the flood rule let through (and the server
    then failed) are shown when it is back; those past the threshold stay held for the
    next app, as they would have with a server, and come back as no wall of banners."""
    d = make(store, screen, flood_threshold=3, flood_window=0.2)
    await d.start()
    screen.fail = "no notification server"
    await deliver(d, *((n, f"m{n}", msg(n)) for n in range(1, 11)))
    await asyncio.sleep(0.3)  # the window has passed
    screen.fail = None
    assert screen.on_back is not None
    screen.on_back()
    await settle()
    assert [r.title for r in screen.shown][:3] == ["t1", "t2", "t3"]
    assert store.count(HELD) == 7
    await d.stop(0.1)


async def test_a_click_the_app_never_took_waits_for_the_next_listener(
    driver: Driver, store: Store, screen: Screen
) -> None:
    await deliver(driver, (1, "m1", msg(1)))
    screen.click()
    await settle()
    gone = App()
    gone.acked = False  # the app died before it had the click
    await driver.subscribe(gone)
    await settle()
    assert store.pending_click(APPID) is not None
    app = App()
    await driver.subscribe(app)
    await settle()
    assert [e["type"] for e, _ in app.events] == ["click"]
    assert store.pending_click(APPID) is None


async def test_a_stuck_listener_is_dropped_and_its_batch_held(driver: Driver, store: Store) -> None:
    stuck = App(stuck=True)
    await driver.subscribe(stuck)
    await deliver(driver, (1, "m1", msg(1)))
    await dropped(stuck)
    assert driver.listeners == 0
    assert store.count(HELD) == 1


async def test_pending_rows_of_a_previous_run_are_handed_on_at_start(
    store: Store, screen: Screen
) -> None:
    store.record_batch("embedded", APPID, [(1, "m1", msg(1).to_dict())])
    d = make(store, screen)
    await d.start()
    assert [r.title for r in screen.shown] == ["t1"]
    assert store.count(PENDING) == 0
    await d.stop(0.1)


# -- local notifications ----------------------------------------------------------------


async def test_create_push_message_answers_the_notification_id(
    driver: Driver, screen: Screen
) -> None:
    answer = await driver.create_push_message({"content": "hi"})
    assert answer == {"notification_id": "1"}
    assert screen.shown[0].title == "unipush-bridge"


async def test_create_push_message_without_a_server_fails(driver: Driver, screen: Screen) -> None:
    screen.fail = "no notification server"
    with pytest.raises(ApiFail, match="no notification server"):
        await driver.create_push_message({"content": "hi"})


async def test_a_delayed_notification_is_stored_fires_and_is_removed(
    driver: Driver, store: Store, screen: Screen
) -> None:
    answer = await driver.create_push_message({"content": "later", "delay": 0.05})
    assert set(answer) == {"notification_id", "scheduled_at"}
    assert len(store.scheduled()) == 1
    for _ in range(100):
        if screen.shown:
            break
        await asyncio.sleep(0.01)
    await settle()
    assert [r.body for r in screen.shown] == ["later"]
    assert store.scheduled() == []


async def test_a_delayed_notification_survives_a_restart(store: Store, screen: Screen) -> None:
    first = make(store, screen)
    await first.start()
    await first.create_push_message({"content": "later", "delay": 0.1})
    await first.stop(0.1)  # the daemon stops before it is due
    assert screen.shown == []
    second = make(store, screen)
    await second.start()
    for _ in range(100):
        if screen.shown:
            break
        await asyncio.sleep(0.01)
    assert [r.body for r in screen.shown] == ["later"]
    await second.stop(0.1)


async def test_channel_sound_name_finds_a_file(
    store: Store, screen: Screen, tmp_path: Path
) -> None:

    (tmp_path / "bell.oga").write_bytes(b"x")
    d = make(store, screen)
    d.reconfigure(d.core.config, Media(None, tmp_path))
    await d.start()
    d.set_push_channel({"channelId": "loud", "channelDesc": "Loud", "soundName": "bell"})
    await settle()
    await d.create_push_message({"content": "x", "channelId": "loud"})
    await d.create_push_message({"content": "y", "sound": "none", "channelId": "loud"})
    assert [r.sound for r in screen.shown] == [tmp_path / "bell.oga", "none"]
    assert [c.channel_id for c in d.all_channels()] == ["DcloudChannelID", "loud"]
    await d.stop(0.1)


async def test_get_push_client_id_waits_for_registration(driver: Driver) -> None:
    waiter = asyncio.ensure_future(driver.get_push_client_id(1.0))
    await settle()
    assert not waiter.done()
    driver.registered("d" * 32, 0)
    assert await waiter == "d" * 32


async def test_get_push_client_id_times_out_with_the_reason(driver: Driver) -> None:
    driver.registration_failed('{"errorCode": "x"}')
    with pytest.raises(ApiFail, match=re.escape('register fail: {"errorCode": "x"}')):
        await driver.get_push_client_id(0.01)


async def test_a_backlog_left_by_a_crash_is_summed_up_as_a_flood(
    store: Store, screen: Screen
) -> None:
    """SIGKILL while a batch of 500 was being shown leaves most of it pending: the next
    start must not put hundreds of banners on the screen (the flood rule applies to
    the replay as to the stream), and none is lost (held for the next listener)."""
    store.record_batch("embedded", APPID, [(n, f"m{n}", msg(n).to_dict()) for n in range(1, 51)])
    d = make(store, screen, flood_threshold=3)
    await d.start()
    assert [r.title for r in screen.shown] == ["t1", "t2", "t3"]
    assert store.count(PENDING) == 0
    assert store.count(HELD) == 47
    await asyncio.sleep(1.5)  # the summary's debounce
    assert screen.shown[-1].body == "47 more messages: t50"
    await d.stop(0.1)


async def test_a_click_one_listener_did_not_take_goes_to_one_that_came_meanwhile(
    store: Store, screen: Screen
) -> None:
    """The kept click is out with the first listener when a second subscribes (it gets
    nothing: the click is in flight); the first never takes it. The second, still
    connected, must get it then, not the next listener to come (maybe never)."""
    store.set_pending_click(APPID, {"payload": {"n": 1}})
    d = make(store, screen)
    await d.start()
    stuck, app = App(stuck=True), App()
    await d.subscribe(stuck)
    await d.subscribe(app)
    assert app.events == []
    await dropped(stuck)
    assert [e["type"] for e, _ in app.events] == ["click"]
    assert store.pending_click(APPID) is None
    await d.stop(0.1)

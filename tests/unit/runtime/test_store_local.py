"""store.py, local notifications' part: channels, scheduled notifications, history.

Real SQLite files in tmp_path; the store's clock is replaced so times are exact.
"""

from __future__ import annotations

from typing import Any

from tests.unit.storekit import Clock
from unipush_bridge.runtime.localpush import Channel
from unipush_bridge.runtime.store import Store


def reopen(db: Store) -> Store:
    db.close()
    return Store(db.path)


URGENT = Channel("urgent", "Urgent", "ding", True, False, 4, 1).to_uni()
QUIET = Channel("quiet", "安静", None, False, True, 2, 0).to_uni()


# channels ---------------------------------------------------------------------------------


def test_no_channels_at_first(db: Store) -> None:
    assert db.channels() == []
    assert db.channel("urgent") is None


def test_add_channel_then_read_it(db: Store) -> None:
    assert db.add_channel("urgent", URGENT) is True
    assert db.channel("urgent") == URGENT
    assert db.channels() == [URGENT]


def test_a_channel_never_changes_once_created(db: Store, clock: Clock) -> None:
    assert db.add_channel("urgent", URGENT) is True
    clock.tick()
    changed = {**URGENT, "channelDesc": "Loud", "importance": 2, "soundName": None}
    assert db.add_channel("urgent", changed) is False
    assert db.channel("urgent") == URGENT
    assert db.channels() == [URGENT]


def test_channels_in_creation_order(db: Store, clock: Clock) -> None:
    specs = {cid: {**URGENT, "channelId": cid} for cid in ("zeta", "alpha", "mid")}
    for cid, spec in specs.items():
        db.add_channel(cid, spec)
        clock.tick()
    db.add_channel("alpha", {**URGENT, "channelId": "alpha", "channelDesc": "again"})
    assert [c["channelId"] for c in db.channels()] == ["zeta", "alpha", "mid"]
    assert db.channel("alpha") == specs["alpha"]


def test_channels_survive_a_reopen(db: Store, clock: Clock) -> None:
    db.add_channel("urgent", URGENT)
    clock.tick()
    db.add_channel("quiet", QUIET)
    db = reopen(db)
    try:
        assert db.channels() == [URGENT, QUIET]
        assert db.channel("quiet") == QUIET
        assert db.add_channel("quiet", URGENT) is False  # still never changed
        assert db.channel("quiet") == QUIET
    finally:
        db.close()


# scheduled notifications ---------------------------------------------------------------------


def test_nothing_scheduled_at_first(db: Store) -> None:
    assert db.scheduled() == []


def test_schedule_round_trip_in_due_order(db: Store) -> None:
    later: dict[str, Any] = {"content": "later", "delay": 0, "payload": {"k": [1, "二"]}}
    sooner: dict[str, Any] = {"content": "sooner", "delay": 0, "title": "标题", "cover": True}
    db.schedule("b" * 32, later, 2000.5)
    db.schedule("a" * 32, sooner, 1500.25)
    assert db.scheduled() == [("a" * 32, sooner, 1500.25), ("b" * 32, later, 2000.5)]


def test_unschedule(db: Store) -> None:
    db.schedule("one", {"content": "1"}, 10.0)
    db.schedule("two", {"content": "2"}, 20.0)
    db.unschedule("one")
    assert db.scheduled() == [("two", {"content": "2"}, 20.0)]
    db.unschedule("one")  # twice: nothing happens
    db.unschedule("never-there")
    db.unschedule("two")
    assert db.scheduled() == []


def test_scheduled_survive_a_reopen(db: Store) -> None:
    db.schedule("one", {"content": "1", "when": 1767323045000}, 10.0)
    db.schedule("two", {"content": "2"}, 20.0)
    db.unschedule("two")
    db = reopen(db)
    try:
        assert db.scheduled() == [("one", {"content": "1", "when": 1767323045000}, 10.0)]
    finally:
        db.close()


# history ------------------------------------------------------------------------------------


def show(db: Store, n: int, keep: int = 100, **data: Any) -> str:
    entry = f"e{n}"
    db.remember_shown(
        entry, "local", "DcloudChannelID", f"t{n}", f"c{n}", {"n": n, **data}, keep=keep
    )
    return entry


def test_history_empty_at_first(db: Store) -> None:
    assert db.history(10) == []


def test_history_entry_fields(db: Store, clock: Clock) -> None:
    data = {"title": "标题", "content": "内容", "payload": {"k": [1, None, "x"]}, "when": 17}
    db.remember_shown("abc", "push", "urgent", "标题", "内容", data, keep=10)
    (entry,) = db.history(10)
    assert entry == {
        "id": "abc",
        "shown_at": 1000.0,
        "source": "push",
        "channel": "urgent",
        "title": "标题",
        "content": "内容",
        "data": data,
        "clicked_at": None,
        "not_shown": None,
        "open_url": None,
        "clicked": False,
        "shown": True,
    }


def test_history_channel_may_be_none(db: Store) -> None:
    db.remember_shown("x", "local", None, "t", "c", {}, keep=10)
    assert db.history(1)[0]["channel"] is None


def test_history_newest_first_and_limit(db: Store, clock: Clock) -> None:
    for n in range(5):
        show(db, n)
        clock.tick()
    assert [e["id"] for e in db.history(10)] == ["e4", "e3", "e2", "e1", "e0"]
    assert [e["id"] for e in db.history(2)] == ["e4", "e3"]
    assert [e["shown_at"] for e in db.history(2)] == [1004.0, 1003.0]


def test_history_keeps_the_newest_n(db: Store, clock: Clock) -> None:
    for n in range(7):
        show(db, n, keep=3)
        clock.tick()
    assert [e["id"] for e in db.history(100)] == ["e6", "e5", "e4"]
    assert [e["data"]["n"] for e in db.history(100)] == [6, 5, 4]


def test_a_smaller_keep_prunes_further(db: Store, clock: Clock) -> None:
    for n in range(5):
        show(db, n, keep=10)
        clock.tick()
    show(db, 5, keep=2)
    assert [e["id"] for e in db.history(100)] == ["e5", "e4"]


def test_history_same_timestamp_still_newest_first(db: Store) -> None:
    # a coarse clock (Windows ticks every ~16 ms) gives several entries one time
    for n in range(6):
        show(db, n, keep=4)
    assert [e["id"] for e in db.history(100)] == ["e5", "e4", "e3", "e2"]


def test_history_after_the_clock_went_back_keeps_what_was_shown_last(
    db: Store, clock: Clock
) -> None:
    """The wall clock stepped back (NTP correcting a clock that ran ahead): what is
    shown from then on is the newest, whatever its shown_at. The prune took it for the
    oldest and deleted it as it was written: the history (and the tray) lost every
    notification until the clock caught up."""
    clock.now = 2_000_000_000.0
    for n in range(3):
        show(db, n, keep=3)
        clock.tick()
    clock.now = 1_000_000_000.0
    show(db, 3, keep=3)
    assert [e["id"] for e in db.history(100)] == ["e3", "e2", "e1"]


def test_mark_clicked_once(db: Store, clock: Clock) -> None:
    first = show(db, 1)
    clock.tick()
    show(db, 2)
    clock.tick(5)
    db.mark_clicked(first)
    clock.tick(5)
    db.mark_clicked(first)  # a second click keeps the first time
    by_id = {e["id"]: e for e in db.history(10)}
    assert by_id["e1"]["clicked"] is True
    assert by_id["e1"]["clicked_at"] == 1006.0
    assert by_id["e2"]["clicked"] is False
    assert by_id["e2"]["clicked_at"] is None


def test_mark_clicked_unknown_or_pruned_entry(db: Store, clock: Clock) -> None:
    old = show(db, 0, keep=1)
    clock.tick()
    show(db, 1, keep=1)
    db.mark_clicked(old)  # pruned already: nothing happens
    db.mark_clicked("never-shown")
    assert [(e["id"], e["clicked"]) for e in db.history(10)] == [("e1", False)]


def test_history_survives_a_reopen(db: Store, clock: Clock) -> None:
    show(db, 0, payload={"deep": {"list": [1, 2, "三"]}})
    clock.tick()
    clicked = show(db, 1)
    clock.tick()
    db.mark_clicked(clicked)
    before = db.history(10)
    db = reopen(db)
    try:
        after = db.history(10)
        assert after == before
        assert [(e["id"], e["clicked"]) for e in after] == [("e1", True), ("e0", False)]
        assert after[1]["data"] == {"n": 0, "payload": {"deep": {"list": [1, 2, "三"]}}}
        clock.tick()
        show(db, 2, keep=2)  # the limit still applies after the reopen
        assert [e["id"] for e in db.history(10)] == ["e2", "e1"]
    finally:
        db.close()


def test_all_three_survive_together(db: Store, clock: Clock) -> None:
    db.add_channel("urgent", URGENT)
    db.schedule("s1", {"content": "later", "channelId": "urgent"}, 5000.0)
    show(db, 0)
    db = reopen(db)
    try:
        assert db.channels() == [URGENT]
        assert db.scheduled() == [("s1", {"content": "later", "channelId": "urgent"}, 5000.0)]
        assert [e["id"] for e in db.history(10)] == ["e0"]
        # the inbox and identity are untouched by any of it
        assert db.count("pending") == 0
    finally:
        db.close()

"""store.py: the daemon's SQLite state, on real files in tmp_path."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.unit.storekit import Clock
from unipush_bridge.runtime.store import DONE, HELD, PENDING, Store

GW = "ws://127.0.0.1:8787/ws"
APP = "__UNI__A"
CID = "0123456789abcdef0123456789abcdef"


def body(n: int) -> dict[str, object]:
    return {"title": f"t{n}", "content": "内容", "payload": {"n": n}}


# identity -------------------------------------------------------------------------------


def test_identity_defaults(db: Store) -> None:
    assert db.identity(GW, APP) == (None, 0)


def test_save_identity_then_identity(db: Store) -> None:
    db.save_identity(GW, APP, CID, 7)
    assert db.identity(GW, APP) == (CID, 7)
    db.save_identity(GW, APP, "f" * 32, 0)
    assert db.identity(GW, APP) == ("f" * 32, 0)


def test_identity_is_per_gateway_and_appid(db: Store) -> None:
    db.save_identity(GW, APP, CID, 3)
    assert db.identity("ws://other:1/ws", APP) == (None, 0)
    assert db.identity(GW, "__UNI__B") == (None, 0)


# inbox ----------------------------------------------------------------------------------


def test_record_once_then_redelivery(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    assert db.record(GW, APP, 1, "m1", body(1)) is True
    assert db.record(GW, APP, 1, "m1", body(1)) is False
    assert db.count(PENDING) == 1
    assert db.unfinished(PENDING) == [("m1", body(1))]


def test_record_advances_the_cursor_to_the_max(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.record(GW, APP, 3, "m3", body(3))
    assert db.identity(GW, APP) == (CID, 3)
    db.record(GW, APP, 2, "m2", body(2))
    assert db.identity(GW, APP) == (CID, 3)
    db.record(GW, APP, 5, "m5", body(5))
    assert db.identity(GW, APP) == (CID, 5)


def test_redelivery_still_advances_the_cursor(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.record(GW, APP, 1, "m1", body(1))
    # same id again under a later seq (e.g. re-sent after a cursor reset)
    assert db.record(GW, APP, 4, "m1", body(1)) is False
    assert db.identity(GW, APP) == (CID, 4)


def test_unfinished_is_oldest_first_per_state(db: Store, clock: Clock) -> None:
    db.save_identity(GW, APP, CID, 0)
    for n in (1, 2, 3, 4):
        clock.now = 1000.0 + n
        db.record(GW, APP, n, f"m{n}", body(n))
    db.mark("m2", HELD)
    db.mark("m4", HELD)
    db.mark("m3", DONE)
    assert db.unfinished(PENDING) == [("m1", body(1))]
    assert db.unfinished(HELD) == [("m2", body(2)), ("m4", body(4))]
    assert db.count(PENDING) == 1
    assert db.count(HELD) == 2
    assert db.count(DONE) == 1


def test_mark_moves_between_states(db: Store) -> None:
    db.record(GW, APP, 1, "m1", body(1))
    db.mark("m1", HELD)
    assert db.unfinished(PENDING) == []
    assert db.unfinished(HELD) == [("m1", body(1))]
    db.mark("m1", DONE)
    assert db.unfinished(HELD) == []
    assert db.count(DONE) == 1
    # a done message still counts as seen
    assert db.record(GW, APP, 1, "m1", body(1)) is False


# batches --------------------------------------------------------------------------------


class Statements:
    """Counts the transactions a store runs on both its connections."""

    def __init__(self, db: Store) -> None:
        self.seen: list[str] = []
        db._db.set_trace_callback(self.seen.append)
        db._hot.set_trace_callback(self.seen.append)

    def count(self, verb: str) -> int:
        return sum(stmt.strip().upper().startswith(verb) for stmt in self.seen)


def test_record_batch_flags_new_and_redelivered_ids(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.record(GW, APP, 1, "m1", body(1))
    flags = db.record_batch(
        GW,
        APP,
        [(2, "m2", body(2)), (1, "m1", body(1)), (3, "m3", body(3)), (4, "m2", body(99))],
    )
    # m1 was recorded before; m2 appears twice in the batch: only its first copy is new
    assert flags == [True, False, True, False]
    assert db.identity(GW, APP) == (CID, 4)
    assert db.unfinished(PENDING) == [("m1", body(1)), ("m2", body(2)), ("m3", body(3))]


def test_record_batch_advances_the_cursor_to_the_max_seq(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.record_batch(GW, APP, [(7, "m7", body(7)), (5, "m5", body(5)), (6, "m6", body(6))])
    assert db.identity(GW, APP) == (CID, 7)
    # a batch below the cursor leaves it where it is
    db.record_batch(GW, APP, [(2, "m2", body(2)), (3, "m3", body(3))])
    assert db.identity(GW, APP) == (CID, 7)


def test_record_batch_of_only_redeliveries_still_advances_the_cursor(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.record_batch(GW, APP, [(1, "m1", body(1)), (2, "m2", body(2))])
    assert db.record_batch(GW, APP, [(8, "m1", body(1)), (9, "m2", body(2))]) == [False, False]
    assert db.identity(GW, APP) == (CID, 9)
    assert db.count(PENDING) == 2


def test_record_batch_is_one_transaction(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    statements = Statements(db)
    db.record_batch(GW, APP, [(n, f"m{n}", body(n)) for n in range(1, 51)])
    assert statements.count("BEGIN") == 1
    assert statements.count("COMMIT") == 1
    assert db.count(PENDING) == 50


def test_record_batch_is_all_or_nothing(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    bad: dict[str, object] = {"title": "t", "content": "c", "payload": object()}
    with pytest.raises(TypeError):
        db.record_batch(GW, APP, [(1, "m1", body(1)), (2, "m2", bad)])
    assert db.count(PENDING) == 0
    assert db.identity(GW, APP) == (CID, 0)
    # the store is still usable and m1 was not taken as seen
    assert db.record_batch(GW, APP, [(1, "m1", body(1))]) == [True]


def test_record_batch_keeps_the_cursor_per_gateway_and_appid(db: Store) -> None:
    db.save_identity(GW, APP, CID, 0)
    db.save_identity(GW, "__UNI__B", CID, 0)
    db.record_batch(GW, APP, [(3, "m3", body(3))])
    assert db.identity(GW, APP) == (CID, 3)
    assert db.identity(GW, "__UNI__B") == (CID, 0)


def test_record_batch_of_nothing_records_nothing(db: Store) -> None:
    db.save_identity(GW, APP, CID, 5)
    assert db.record_batch(GW, APP, []) == []
    assert db.identity(GW, APP) == (CID, 5)


def test_mark_many_sets_each_state(db: Store) -> None:
    db.record_batch(GW, APP, [(n, f"m{n}", body(n)) for n in (1, 2, 3, 4)])
    db.mark_many([("m1", DONE), ("m2", HELD), ("m4", HELD)])
    assert db.unfinished(PENDING) == [("m3", body(3))]
    assert db.unfinished(HELD) == [("m2", body(2)), ("m4", body(4))]
    assert db.count(DONE) == 1


def test_mark_many_is_one_transaction(db: Store) -> None:
    db.record_batch(GW, APP, [(n, f"m{n}", body(n)) for n in range(1, 21)])
    statements = Statements(db)
    db.mark_many([(f"m{n}", DONE) for n in range(1, 21)])
    assert statements.count("BEGIN") == 1
    assert statements.count("COMMIT") == 1
    assert db.count(DONE) == 20


def test_mark_many_of_nothing_touches_nothing(db: Store) -> None:
    db.record(GW, APP, 1, "m1", body(1))
    statements = Statements(db)
    db.mark_many([])
    assert statements.seen == []
    assert db.unfinished(PENDING) == [("m1", body(1))]


def test_mark_many_later_entries_win_and_unknown_ids_are_ignored(db: Store) -> None:
    db.record(GW, APP, 1, "m1", body(1))
    db.mark_many([("m1", HELD), ("nope", DONE), ("m1", DONE)])
    assert db.count(DONE) == 1
    assert db.count(HELD) == 0


def test_mark_many_done_marks_count_towards_the_prune(path: Path, clock: Clock) -> None:
    db = Store(path, keep_done=3)
    try:
        db.record_batch(GW, APP, [(n, f"m{n}", body(n)) for n in range(1, 1001)])
        db.mark_many([(f"m{n}", HELD) for n in range(1, 1001)])
        assert db.count(HELD) == 1000  # held marks do not count
        db.mark_many([(f"m{n}", DONE) for n in range(1, 1000)])
        assert db.count(DONE) == 999
        db.mark_many([("m1000", DONE)])
        assert db.count(DONE) == 3
    finally:
        db.close()


def test_prune_keeps_the_newest_done_rows(path: Path, clock: Clock) -> None:
    db = Store(path, keep_done=2)
    try:
        for n in range(1, 6):
            clock.now = 100.0 + n
            db.record(GW, APP, n, f"m{n}", body(n))
        db.record(GW, APP, 6, "pending", body(6))
        for n in range(1, 6):
            db.mark(f"m{n}", DONE)
        db.prune()
        assert db.count(DONE) == 2
        assert db.count(PENDING) == 1
        # the newest two are still known, the oldest is forgotten
        assert db.record(GW, APP, 5, "m5", body(5)) is False
        assert db.record(GW, APP, 4, "m4", body(4)) is False
        assert db.record(GW, APP, 1, "m1", body(1)) is True
    finally:
        db.close()


# pending click --------------------------------------------------------------------------


def take(db: Store, appid: str) -> dict[str, object] | None:
    """What the driver does once a listener has the click: read it, then clear it."""
    click = db.pending_click(appid)
    db.clear_pending_click(appid)
    return click


def test_pending_click_set_and_take(db: Store) -> None:
    assert take(db, APP) is None
    db.set_pending_click(APP, {"title": "a", "payload": {"x": 1}})
    db.set_pending_click(APP, {"title": "b", "payload": "latest"})
    db.set_pending_click("__UNI__OTHER", {"title": "o"})
    assert take(db, APP) == {"title": "b", "payload": "latest"}
    assert take(db, APP) is None
    assert take(db, "__UNI__OTHER") == {"title": "o"}


def test_pending_click_keeps_its_id_across_a_reopen(path: Path) -> None:
    first = Store(path)
    first.set_pending_click(APP, {"title": "a"}, "click-1")
    first.set_pending_click(APP, {"title": "b"}, "click-2")
    first.close()
    again = Store(path)
    assert again.pending_click(APP) == {"title": "b"}
    assert again.pending_click_id(APP) == "click-2"
    again.clear_pending_click(APP)
    assert again.pending_click_id(APP) is None
    again.set_pending_click(APP, {"title": "c"})  # no id: the core makes one at start
    assert again.pending_click_id(APP) is None
    again.close()


def test_held_for_want_of_a_server_is_kept_across_a_reopen(path: Path, clock: Clock) -> None:
    """The flag is written with the held state, and any later write clears it."""
    first = Store(path)
    first.save_identity(GW, APP, CID, 0)
    for n in (1, 2, 3):
        first.record(GW, APP, n, f"m{n}", body(n))
    first.mark_many([("m1", HELD), ("m2", HELD), ("m3", HELD)], waiting={"m1", "m3"})
    first.mark_many([("m3", HELD)])  # held again, now on purpose (past a flood's threshold)
    first.close()
    second = Store(path)
    try:
        assert second.waiting_for_server() == {"m1"}
        second.mark("m1", DONE)
        assert second.waiting_for_server() == set()
    finally:
        second.close()


def test_an_inbox_from_before_the_wait_flag_is_migrated(path: Path) -> None:
    """A store an older version wrote: its held rows wait for a listener, as then."""
    import sqlite3

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE inbox (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL, "
        "state TEXT NOT NULL DEFAULT 'pending', received_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO inbox VALUES ('m1', 1, '{}', 'held', 0)")
    old.commit()
    old.close()
    db = Store(path)
    try:
        assert db.unfinished(HELD) == [("m1", {})] and db.waiting_for_server() == set()
        db.mark_many([("m1", HELD)], waiting={"m1"})
        assert db.waiting_for_server() == {"m1"}
    finally:
        db.close()


# durability and permissions -------------------------------------------------------------


def test_state_survives_close_and_reopen(path: Path, clock: Clock) -> None:
    first = Store(path)
    first.save_identity(GW, APP, CID, 0)
    first.record(GW, APP, 1, "m1", body(1))
    first.record(GW, APP, 2, "m2", body(2))
    first.mark("m1", HELD)
    first.set_pending_click(APP, {"title": "clicked"})
    first.close()

    second = Store(path)
    try:
        assert second.identity(GW, APP) == (CID, 2)
        assert second.unfinished(HELD) == [("m1", body(1))]
        assert second.unfinished(PENDING) == [("m2", body(2))]
        assert second.record(GW, APP, 2, "m2", body(2)) is False
        assert take(second, APP) == {"title": "clicked"}
    finally:
        second.close()

    third = Store(path)
    try:
        assert take(third, APP) is None
    finally:
        third.close()


def test_file_is_private(db: Store, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_prune_keeps_the_last_recorded_rows_after_the_clock_went_back(
    path: Path, clock: Clock
) -> None:
    """The wall clock stepped back (NTP fixing a clock that ran ahead): the pushes
    recorded since are the newest, whatever their received_at says. Pruned first,
    a redelivery of one of them (its ack lost with a cut link) read as new: shown
    twice."""
    db = Store(path, keep_done=2)
    try:
        clock.now = 2_000_000_000.0
        for n in range(1, 4):
            db.record(GW, APP, n, f"m{n}", body(n))
            db.mark(f"m{n}", DONE)
        clock.now = 1_000_000_000.0
        db.record(GW, APP, 4, "m4", body(4))
        db.mark("m4", DONE)
        db.prune()
        assert db.record(GW, APP, 4, "m4", body(4)) is False
    finally:
        db.close()


def test_unfinished_is_in_recording_order_after_the_clock_went_back(
    db: Store, clock: Clock
) -> None:
    """Replayed and held pushes go out in the order they came, not by the wall clock."""
    clock.now = 2_000_000_000.0
    db.record(GW, APP, 9, "m1", body(1))
    db.record(GW, APP, 8, "m2", body(2))  # as the gateway sent it
    clock.now = 1_000_000_000.0
    db.record(GW, APP, 20, "m3", body(3))
    assert [i for i, _ in db.unfinished(PENDING)] == ["m1", "m2", "m3"]


def test_prune_runs_by_itself_after_1000_done_marks(path: Path, clock: Clock) -> None:
    db = Store(path, keep_done=3)
    try:
        for n in range(1, 1001):
            clock.now = float(n)
            db.record(GW, APP, n, f"m{n}", body(n))
        for n in range(1, 1000):
            db.mark(f"m{n}", DONE)
        assert db.count(DONE) == 999
        db.mark("m1000", DONE)
        assert db.count(DONE) == 3
        assert db.record(GW, APP, 1000, "m1000", body(1000)) is False
        assert db.record(GW, APP, 997, "m997", body(997)) is True
    finally:
        db.close()


def test_scheduling_an_id_again_moves_its_row_in_one_write(db: Store) -> None:
    """A wall-clock step moves every scheduled row; one statement each, so no moment
    exists where a notification is on disk neither before nor after."""
    db.schedule("s1", {"content": "a"}, 100.0)
    db.schedule("s1", {"content": "a"}, 40.0)
    assert db.scheduled() == [("s1", {"content": "a"}, 40.0)]

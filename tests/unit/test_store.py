"""store.py: the daemon's SQLite state, on real files in tmp_path."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from unipush_bridge import store as store_mod
from unipush_bridge.store import DONE, HELD, PENDING, Store

GW = "ws://127.0.0.1:8787/ws"
APP = "__UNI__A"
CID = "0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_mod, "time", SimpleNamespace(time=c))
    return c


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "daemon.sqlite3"


@pytest.fixture
def db(path: Path, clock: Clock) -> Iterator[Store]:
    s = Store(path)
    yield s
    s.close()


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


def test_unfinished_orders_by_time_then_seq(db: Store, clock: Clock) -> None:
    clock.now = 50.0
    db.record(GW, APP, 9, "late-seq", body(9))
    db.record(GW, APP, 8, "early-seq", body(8))
    clock.now = 40.0
    db.record(GW, APP, 20, "earliest", body(20))
    assert [i for i, _ in db.unfinished(PENDING)] == ["earliest", "early-seq", "late-seq"]


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


def test_pending_click_set_and_take(db: Store) -> None:
    assert db.take_pending_click(APP) is None
    db.set_pending_click(APP, {"title": "a", "payload": {"x": 1}})
    db.set_pending_click(APP, {"title": "b", "payload": "latest"})
    db.set_pending_click("__UNI__OTHER", {"title": "o"})
    assert db.take_pending_click(APP) == {"title": "b", "payload": "latest"}
    assert db.take_pending_click(APP) is None
    assert db.take_pending_click("__UNI__OTHER") == {"title": "o"}


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
        assert second.take_pending_click(APP) == {"title": "clicked"}
    finally:
        second.close()

    third = Store(path)
    try:
        assert third.take_pending_click(APP) is None
    finally:
        third.close()


def test_file_is_private(db: Store, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


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

"""gateway/store.py: registered cids, undelivered messages, request ids; a fake clock."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from unipush_bridge.gateway.store import GatewayStore

APP = "__UNI__A"
CID = "0123456789abcdef0123456789abcdef"
CID2 = "fedcba9876543210fedcba9876543210"


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gs(tmp_path: Path, clock: Clock) -> Iterator[GatewayStore]:
    s = GatewayStore(tmp_path / "gw" / "gateway.sqlite3", clock)
    yield s
    s.close()


def msg(n: int) -> dict[str, object]:
    return {"title": f"t{n}", "content": "c", "payload": {"n": n}}


def add(gs: GatewayStore, n: int, cid: str = CID, ttl_s: float = 3600.0) -> int:
    return gs.add_message(APP, cid, f"m{n}", "task", msg(n), ttl_s)


def seqs(gs: GatewayStore, cid: str = CID, after: int = 0) -> list[int]:
    return [s for s, _, _ in gs.after(APP, cid, after)]


# registration ---------------------------------------------------------------------------


def test_register_new_cid(gs: GatewayStore) -> None:
    assert gs.known(APP, CID) is False
    assert gs.register(APP, CID, 0) == 0
    assert gs.known(APP, CID) is True
    assert gs.known("__UNI__B", CID) is False


def test_register_cursor_is_max_of_stored_and_given(gs: GatewayStore) -> None:
    gs.register(APP, CID, 0)
    s1, s2, s3 = add(gs, 1), add(gs, 2), add(gs, 3)
    assert gs.register(APP, CID, s2) == s2
    assert seqs(gs) == [s3]  # rows up to the cursor are gone
    # a client that lost its state resumes from the stored cursor
    assert gs.register(APP, CID, 0) == s2
    assert seqs(gs) == [s3]
    assert s1 < s2 < s3


def test_register_picks_up_acks(gs: GatewayStore) -> None:
    gs.register(APP, CID, 0)
    add(gs, 1)
    s2 = add(gs, 2)
    gs.ack(APP, CID, s2)
    assert gs.register(APP, CID, 0) == s2
    assert seqs(gs) == []


def test_an_unknown_cid_starts_from_zero_whatever_cursor_it_brings(gs: GatewayStore) -> None:
    # The client's cursor counts seqs of a store this gateway no longer has (data reset):
    # honouring it would skip every new message numbered at or below it.
    assert gs.register(APP, CID, 41) == 0
    s1 = add(gs, 1)
    assert gs.register(APP, CID, 0) == 0
    assert [seq for seq, _, _ in gs.after(APP, CID, 0)] == [s1]


# messages -------------------------------------------------------------------------------


def test_after_orders_and_limits(gs: GatewayStore) -> None:
    gs.register(APP, CID, 0)
    s = [add(gs, n) for n in range(1, 6)]
    assert s == sorted(s)
    rows = gs.after(APP, CID, 0)
    assert rows == [(s[i], f"m{i + 1}", msg(i + 1)) for i in range(5)]
    assert seqs(gs, after=s[1]) == s[2:]
    assert [r[0] for r in gs.after(APP, CID, 0, limit=2)] == s[:2]
    assert [r[0] for r in gs.after(APP, CID, s[1], limit=2)] == s[2:4]
    assert gs.after(APP, CID, s[4]) == []


def test_messages_are_per_cid_and_appid(gs: GatewayStore) -> None:
    a = add(gs, 1, CID)
    b = add(gs, 2, CID2)
    c = gs.add_message("__UNI__B", CID, "m3", "task", msg(3), 60)
    assert seqs(gs, CID) == [a]
    assert seqs(gs, CID2) == [b]
    assert [r[0] for r in gs.after("__UNI__B", CID, 0)] == [c]


def test_ack_deletes_up_to_and_including_seq(gs: GatewayStore) -> None:
    gs.register(APP, CID, 0)
    s1, s2, s3 = add(gs, 1), add(gs, 2), add(gs, 3)
    other = add(gs, 4, CID2)
    gs.ack(APP, CID, s2)
    assert seqs(gs) == [s3]
    assert gs.pending_count(APP, CID) == 1
    assert seqs(gs, CID2) == [other]
    # an older ack does not bring anything back or move the cursor back
    gs.ack(APP, CID, s1)
    assert gs.register(APP, CID, 0) == s2


def test_expired_rows_are_hidden_then_purged(gs: GatewayStore, clock: Clock) -> None:
    short = add(gs, 1, ttl_s=10)
    long = add(gs, 2, ttl_s=100)
    clock.now += 9.5
    assert seqs(gs) == [short, long]
    assert gs.pending_count(APP, CID) == 2
    assert gs.purge_expired() == 0
    clock.now += 0.5  # exactly at expires_at
    assert seqs(gs) == [long]
    assert gs.pending_count(APP, CID) == 1
    assert gs.purge_expired() == 1
    assert gs.purge_expired() == 0
    clock.now += 1_000
    assert seqs(gs) == []
    assert gs.purge_expired() == 1


def test_purge_removes_the_row_for_good(gs: GatewayStore, clock: Clock) -> None:
    add(gs, 1, ttl_s=1)
    clock.now += 2
    gs.purge_expired()
    clock.now -= 10  # even if the clock went back
    assert seqs(gs) == []


# request_id deduplication ---------------------------------------------------------------


def test_answer_for_and_remember_answer(gs: GatewayStore) -> None:
    answer = {"errCode": 0, "errMsg": "", "data": {"RASS_1": {CID: "successed_online"}}}
    assert gs.answer_for(APP, "request-0001") is None
    gs.remember_answer(APP, "request-0001", answer)
    assert gs.answer_for(APP, "request-0001") == answer
    assert gs.answer_for("__UNI__B", "request-0001") is None
    assert gs.answer_for(APP, "request-0002") is None


def test_the_first_answer_wins(gs: GatewayStore) -> None:
    gs.remember_answer(APP, "request-0001", {"n": 1})
    gs.remember_answer(APP, "request-0001", {"n": 2})
    assert gs.answer_for(APP, "request-0001") == {"n": 1}


def test_rollback_forgets_the_answer_and_the_message(gs: GatewayStore) -> None:
    with pytest.raises(RuntimeError), gs.transaction():
        gs.remember_answer(APP, "request-0001", {"n": 1})
        add(gs, 1)
        raise RuntimeError("refused half way")
    assert gs.answer_for(APP, "request-0001") is None
    assert seqs(gs) == []
    with gs.transaction():
        gs.remember_answer(APP, "request-0001", {"n": 2})
    assert gs.answer_for(APP, "request-0001") == {"n": 2}


def test_state_survives_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "gateway.sqlite3"
    first = GatewayStore(path, clock)
    first.register(APP, CID, 0)
    s1, s2 = add(first, 1), add(first, 2)
    first.ack(APP, CID, s1)
    first.remember_answer(APP, "request-0001", {"n": 1})
    first.close()
    second = GatewayStore(path, clock)
    try:
        assert second.known(APP, CID)
        assert second.register(APP, CID, 0) == s1
        assert seqs(second) == [s2]
        assert second.answer_for(APP, "request-0001") == {"n": 1}
        assert add(second, 3) > s2
    finally:
        second.close()


def test_file_is_private(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "data" / "gateway.sqlite3"
    GatewayStore(path, clock).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_older_file_loses_the_index_of_null_groups(tmp_path: Path, clock: Clock) -> None:
    """A store from before issue 17 had every task in tasks_by_group (NULL groups too:
    a write per sendMessage); it is dropped for the index of named groups only, and
    group reports still find their tasks."""
    path = tmp_path / "gateway.sqlite3"
    GatewayStore(path, clock).close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX tasks_by_group_name")
    db.execute("CREATE INDEX tasks_by_group ON tasks (appid, group_name)")
    db.commit()
    db.close()
    gs = GatewayStore(path, clock)
    try:
        names = {r[0] for r in gs._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "tasks_by_group" not in names and "tasks_by_group_name" in names
        gs.add_task(APP, "t1", "promo", 1, 1)
        gs.add_task(APP, "t2", None, 1, 1)
        assert gs.report(APP, "group_name=?", ("promo",)) == {
            "msg_num": 1,
            "target_num": 1,
            "receive_num": 0,
            "display_num": 0,
            "click_num": 0,
        }
    finally:
        gs.close()

"""The store protocol (storeapi.py) on both stores: registered cids, undelivered messages,
request ids; a fake clock. The file's own tests (mode bits, migration) use store.py."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unipush_bridge.gateway.sqlitestore import SqliteStore
from unipush_bridge.gateway.store import GatewayStore
from unipush_bridge.gateway.storeapi import Store

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
async def gs(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    s: Store = SqliteStore(tmp_path / "gw" / "gateway.sqlite3", clock)
    yield s
    await s.close()


def msg(n: int) -> dict[str, object]:
    return {"title": f"t{n}", "content": "c", "payload": {"n": n}}


async def add(gs: Store, n: int, cid: str = CID, ttl_s: float = 3600.0) -> int:
    return await gs.add_message(APP, cid, f"m{n}", "task", msg(n), ttl_s)


async def seqs(gs: Store, cid: str = CID, after: int = 0) -> list[int]:
    return [s for s, _, _ in await gs.after(APP, cid, after)]


# registration ---------------------------------------------------------------------------


async def test_register_new_cid(gs: Store) -> None:
    assert await gs.known(APP, CID) is False
    assert await gs.register(APP, CID, 0) == 0
    assert await gs.known(APP, CID) is True
    assert await gs.known("__UNI__B", CID) is False


async def test_register_cursor_is_max_of_stored_and_given(gs: Store) -> None:
    await gs.register(APP, CID, 0)
    s1, s2, s3 = await add(gs, 1), await add(gs, 2), await add(gs, 3)
    assert await gs.register(APP, CID, s2) == s2
    assert await seqs(gs) == [s3]  # rows up to the cursor are gone
    # a client that lost its state resumes from the stored cursor
    assert await gs.register(APP, CID, 0) == s2
    assert await seqs(gs) == [s3]
    assert s1 < s2 < s3


async def test_register_picks_up_acks(gs: Store) -> None:
    await gs.register(APP, CID, 0)
    await add(gs, 1)
    s2 = await add(gs, 2)
    await gs.ack(APP, CID, s2)
    assert await gs.register(APP, CID, 0) == s2
    assert await seqs(gs) == []


async def test_an_unknown_cid_starts_from_zero_whatever_cursor_it_brings(gs: Store) -> None:
    # The client's cursor counts seqs of a store this gateway no longer has (data reset):
    # honouring it would skip every new message numbered at or below it.
    assert await gs.register(APP, CID, 41) == 0
    s1 = await add(gs, 1)
    assert await gs.register(APP, CID, 0) == 0
    assert [seq for seq, _, _ in await gs.after(APP, CID, 0)] == [s1]


# messages -------------------------------------------------------------------------------


async def test_after_orders_and_limits(gs: Store) -> None:
    await gs.register(APP, CID, 0)
    s = [await add(gs, n) for n in range(1, 6)]
    assert s == sorted(s)
    rows = await gs.after(APP, CID, 0)
    assert rows == [(s[i], f"m{i + 1}", msg(i + 1)) for i in range(5)]
    assert await seqs(gs, after=s[1]) == s[2:]
    assert [r[0] for r in await gs.after(APP, CID, 0, limit=2)] == s[:2]
    assert [r[0] for r in await gs.after(APP, CID, s[1], limit=2)] == s[2:4]
    assert await gs.after(APP, CID, s[4]) == []


async def test_messages_are_per_cid_and_appid(gs: Store) -> None:
    a = await add(gs, 1, CID)
    b = await add(gs, 2, CID2)
    c = await gs.add_message("__UNI__B", CID, "m3", "task", msg(3), 60)
    assert await seqs(gs, CID) == [a]
    assert await seqs(gs, CID2) == [b]
    assert [r[0] for r in await gs.after("__UNI__B", CID, 0)] == [c]


async def test_ack_deletes_up_to_and_including_seq(gs: Store) -> None:
    await gs.register(APP, CID, 0)
    s1, s2, s3 = await add(gs, 1), await add(gs, 2), await add(gs, 3)
    other = await add(gs, 4, CID2)
    await gs.ack(APP, CID, s2)
    assert await seqs(gs) == [s3]
    assert await gs.pending_count(APP, CID) == 1
    assert await seqs(gs, CID2) == [other]
    # an older ack does not bring anything back or move the cursor back
    await gs.ack(APP, CID, s1)
    assert await gs.register(APP, CID, 0) == s2


async def test_acks_count_receipts_per_task_in_one_window(gs: Store) -> None:
    """One window of acks for several cids and tasks: each task's receive_num counts
    its own messages once (the Redis script adds them up per task), whatever its task
    id holds (a quote or a backslash cannot hide it from the count)."""
    odd = 'RASL_"odd\\task'
    cids = [f"{n:032x}" for n in range(3)]
    for cid in cids:
        await gs.register(APP, cid, 0)
    await gs.add_task(APP, "task-a", None, 3, 3)
    await gs.add_task(APP, odd, None, 1, 1)
    acks = []
    for n, cid in enumerate(cids):
        seq = await gs.add_message(APP, cid, f"a{n}", "task-a", msg(n), 600)
        if n == 0:
            seq = await gs.add_message(APP, cid, "odd", odd, msg(9), 600)
        acks.append((APP, cid, seq))
    await gs.ack_many(acks)
    again = await gs.report(APP, "taskid=?", ("task-a",))
    assert again is not None and again["receive_num"] == 3
    odd_report = await gs.report(APP, "taskid=?", (odd,))
    assert odd_report is not None and odd_report["receive_num"] == 1
    await gs.ack_many(acks)  # a repeated window counts nothing again
    again = await gs.report(APP, "taskid=?", ("task-a",))
    assert again is not None and again["receive_num"] == 3
    assert all([await seqs(gs, cid) == [] for cid in cids])


async def test_expired_rows_are_hidden_then_purged(gs: Store, clock: Clock) -> None:
    short = await add(gs, 1, ttl_s=10)
    long = await add(gs, 2, ttl_s=100)
    clock.now += 9.5
    assert await seqs(gs) == [short, long]
    assert await gs.pending_count(APP, CID) == 2
    assert await gs.purge_expired() == 0
    clock.now += 0.5  # exactly at expires_at
    assert await seqs(gs) == [long]
    assert await gs.pending_count(APP, CID) == 1
    assert await gs.purge_expired() == 1
    assert await gs.purge_expired() == 0
    clock.now += 1_000
    assert await seqs(gs) == []
    assert await gs.purge_expired() == 1


async def test_purge_removes_the_row_for_good(gs: Store, clock: Clock) -> None:
    await add(gs, 1, ttl_s=1)
    clock.now += 2
    await gs.purge_expired()
    clock.now -= 10  # even if the clock went back
    assert await seqs(gs) == []


# request_id deduplication ---------------------------------------------------------------


async def test_answer_for_and_remember_answer(gs: Store) -> None:
    answer = {"errCode": 0, "errMsg": "", "data": {"RASS_1": {CID: "successed_online"}}}
    assert await gs.answer_for(APP, "request-0001") is None
    await gs.remember_answer(APP, "request-0001", answer)
    assert await gs.answer_for(APP, "request-0001") == answer
    assert await gs.answer_for("__UNI__B", "request-0001") is None
    assert await gs.answer_for(APP, "request-0002") is None


async def test_request_id_answers_are_kept_three_days_on_both_stores(
    gs: Store, clock: Clock, gateway_store: str
) -> None:
    """The docs said "no expiry"; SQLite kept every answer for ever (a table that grew
    by one row per sendMessage with a request_id), Redis dropped them after 3 days.
    Both keep them 3 days, the longest ttl a message can wait for its device."""
    from unipush_bridge.gateway.redisstore import REQUEST_ANSWER_TTL_S

    assert REQUEST_ANSWER_TTL_S == 3 * 86_400
    await gs.remember_answer(APP, "request-0001", {"n": 1})
    if gateway_store == "redis":  # Redis' own expiry, on Redis' clock
        ttl = await gs._r.ttl(gs._k("r", APP, "request-0001"))  # type: ignore[attr-defined]
        assert REQUEST_ANSWER_TTL_S - 5 <= ttl <= REQUEST_ANSWER_TTL_S
        return
    clock.now += REQUEST_ANSWER_TTL_S - 1
    assert await gs.answer_for(APP, "request-0001") == {"n": 1}
    clock.now += 2
    assert await gs.answer_for(APP, "request-0001") is None
    await gs.remember_answer(APP, "request-0001", {"n": 2})  # the id is free again
    assert await gs.answer_for(APP, "request-0001") == {"n": 2}
    clock.now += REQUEST_ANSWER_TTL_S + 1
    await gs.purge_expired()
    db = gs.sync._db  # type: ignore[attr-defined]
    assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


async def test_the_first_answer_wins(gs: Store) -> None:
    await gs.remember_answer(APP, "request-0001", {"n": 1})
    await gs.remember_answer(APP, "request-0001", {"n": 2})
    assert await gs.answer_for(APP, "request-0001") == {"n": 1}


async def test_rollback_forgets_the_answer_and_the_message(gs: Store) -> None:
    with pytest.raises(RuntimeError):
        async with gs.transaction():
            await gs.remember_answer(APP, "request-0001", {"n": 1})
            await add(gs, 1)
            raise RuntimeError("refused half way")
    assert await gs.answer_for(APP, "request-0001") is None
    assert await seqs(gs) == []
    async with gs.transaction():
        await gs.remember_answer(APP, "request-0001", {"n": 2})
    assert await gs.answer_for(APP, "request-0001") == {"n": 2}


async def test_state_survives_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "gateway.sqlite3"
    first = SqliteStore(path, clock)
    await first.register(APP, CID, 0)
    s1, s2 = await add(first, 1), await add(first, 2)
    await first.ack(APP, CID, s1)
    await first.remember_answer(APP, "request-0001", {"n": 1})
    await first.close()
    second = SqliteStore(path, clock)
    try:
        assert await second.known(APP, CID)
        assert await second.register(APP, CID, 0) == s1
        assert await seqs(second) == [s2]
        assert await second.answer_for(APP, "request-0001") == {"n": 1}
        assert await add(second, 3) > s2
    finally:
        await second.close()


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


def test_an_ack_counts_its_tasks_in_one_statement_however_many_tasks(tmp_path: Path) -> None:
    """Every sendMessage is a task of its own, so the window of acks after a stream of
    them covers as many tasks as messages: one UPDATE per task cost each push a
    statement on the ack path. The count stays exact, in a fixed number of statements."""
    store = GatewayStore(tmp_path / "gateway.sqlite3", Clock())
    try:
        store.register(APP, CID, 0)
        last = 0
        for n in range(12):
            store.add_task(APP, f"task-{n}", None, 1, 1)
            last = store.add_message(APP, CID, f"m{n}", f"task-{n}", msg(n), 600)
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store.ack_many([(APP, CID, last)])
        store._db.set_trace_callback(None)
        writes = [s for s in statements if s.startswith(("UPDATE", "DELETE", "SELECT"))]
        assert len(writes) <= 3, writes
        for n in range(12):
            report = store.report(APP, "taskid=?", (f"task-{n}",))
            assert report is not None and report["receive_num"] == 1
    finally:
        store.close()

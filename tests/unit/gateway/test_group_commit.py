"""Group commit and the push that leaves before its commit (issue 17 item 5, issue 8
item 10): GroupCommit on a real SQLite file, then a real Gateway on a loopback port
with websocket clients (tests/gatewaykit.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.gatewaykit import Kit, running_gateway
from unipush_bridge.gateway.service import message_id
from unipush_bridge.gateway.sqlitestore import SqliteStore
from unipush_bridge.sqlitedb import GroupCommit, open_db

APP = "__UNI__A"


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = open_db(tmp_path / "g.sqlite3", "NORMAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    return conn


def committed(tmp_path: Path) -> list[str]:
    """What another connection sees: only what is committed."""
    other = sqlite3.connect(tmp_path / "g.sqlite3")
    try:
        return [r[0] for r in other.execute("SELECT k FROM t ORDER BY k")]
    finally:
        other.close()


def count_commits(db: sqlite3.Connection) -> list[str]:
    seen: list[str] = []
    db.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


async def test_a_close_in_the_units_turn_commits_them_and_leaves_no_callback(
    tmp_path: Path,
) -> None:
    """The gateway's stop applies the last acks and closes the store in one turn: the
    flush scheduled for the acks' unit ran after the close, on a closed connection."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    store = SqliteStore(tmp_path / "gateway.sqlite3", lambda: 1_000.0)
    async with store.transaction():
        await store.register(APP, "0" * 32, 0)
    await store.close()
    await asyncio.sleep(0.01)
    assert errors == []
    again = SqliteStore(tmp_path / "gateway.sqlite3", lambda: 1_000.0)
    assert await again.known(APP, "0" * 32)
    await again.close()


async def test_units_of_one_loop_turn_share_one_commit(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    group = GroupCommit(db)
    commits = count_commits(db)

    async def request(k: str) -> None:
        with group.unit():
            db.execute("INSERT INTO t VALUES (?, 1)", (k,))
        await group.synced()

    await asyncio.gather(*(request(f"k{i:02}") for i in range(16)))
    assert commits == ["COMMIT"]
    assert committed(tmp_path) == [f"k{i:02}" for i in range(16)]


async def test_synced_returns_only_once_the_unit_is_committed(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    group = GroupCommit(db)
    with group.unit():
        db.execute("INSERT INTO t VALUES ('a', 1)")
    assert committed(tmp_path) == []  # written, readable here, not committed yet
    assert db.execute("SELECT k FROM t").fetchall() == [("a",)]
    await group.synced()
    assert committed(tmp_path) == ["a"]


async def test_a_failing_unit_rolls_back_alone(db: sqlite3.Connection, tmp_path: Path) -> None:
    group = GroupCommit(db)
    with group.unit():
        db.execute("INSERT INTO t VALUES ('before', 1)")
    with pytest.raises(sqlite3.IntegrityError), group.unit():
        db.execute("INSERT INTO t VALUES ('bad', 1)")
        db.execute("INSERT INTO t VALUES ('bad', 2)")  # the primary key again
    with group.unit():
        db.execute("INSERT INTO t VALUES ('after', 1)")
    await group.synced()
    assert committed(tmp_path) == ["after", "before"]


async def test_a_failed_commit_reaches_every_caller_and_keeps_nothing(tmp_path: Path) -> None:
    """A commit that fails (here a deferred foreign key; a full disk in life) must not
    let any of the units it covered be answered as done."""
    db = open_db(tmp_path / "g.sqlite3", "NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("CREATE TABLE parent (k TEXT PRIMARY KEY)")
    db.execute(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL, p TEXT "
        "REFERENCES parent(k) DEFERRABLE INITIALLY DEFERRED)"
    )
    group = GroupCommit(db)

    async def request(k: str, parent: str | None) -> str:
        with group.unit():
            db.execute("INSERT INTO t VALUES (?, 1, ?)", (k, parent))
        try:
            await group.synced()
        except sqlite3.IntegrityError:
            return "failed"
        return "ok"

    assert await asyncio.gather(request("a", None), request("b", "missing")) == [
        "failed",
        "failed",
    ]
    assert committed(tmp_path) == []
    assert not db.in_transaction
    # and the next turn commits as usual
    assert await request("c", None) == "ok"
    assert committed(tmp_path) == ["c"]


def test_without_a_loop_a_unit_commits_as_it_ends(db: sqlite3.Connection, tmp_path: Path) -> None:
    group = GroupCommit(db)
    with group.unit():
        db.execute("INSERT INTO t VALUES ('a', 1)")
        with group.unit():  # nested: one commit, at the outer end
            db.execute("INSERT INTO t VALUES ('b', 1)")
        assert committed(tmp_path) == []
    assert committed(tmp_path) == ["a", "b"]


# the gateway -----------------------------------------------------------------------


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0) as k:
        yield k


def hold_commits(kit: Kit) -> tuple[asyncio.Event, list[Callable[[], None]]]:
    """Commits wait until the returned event is set: the window between a push leaving
    and its commit, held open."""
    store = kit.gateway.store
    assert isinstance(store, SqliteStore)
    group: Any = store.sync._group
    release = asyncio.Event()
    held: list[Callable[[], None]] = []
    real = group.flush

    def flush() -> None:
        held.append(real)

        async def later() -> None:
            await release.wait()
            real()

        asyncio.get_running_loop().create_task(later())

    group.flush = flush
    return release, held


def body(cid: str, **extra: Any) -> dict[str, Any]:
    return {"push_clientid": cid, "title": "t", "content": "c", "payload": {"n": 1}, **extra}


async def test_the_push_leaves_before_its_commit_and_the_answer_waits_for_it(
    kit: Kit, tmp_path: Path
) -> None:
    client = await kit.client()
    release, held = hold_commits(kit)
    answer = asyncio.ensure_future(kit.call("sendMessage", body(client.cid)))
    push = await client.next_push()
    assert push["message"]["title"] == "t"
    await asyncio.sleep(0.1)
    assert held and not answer.done()  # the frame is out, the commit is not: no answer
    release.set()
    status, result = await asyncio.wait_for(answer, 5)
    assert status == 200 and result["data"] == {
        push["message"]["taskid"]: {client.cid: "successed_online"}
    }
    other = sqlite3.connect(tmp_path / "gateway.sqlite3")
    rows = other.execute("SELECT seq, id FROM messages").fetchall()
    other.close()
    assert rows == [(push["seq"], push["id"])]


async def test_a_turns_pushes_to_one_daemon_leave_in_one_write_before_its_commit(
    kit: Kit,
) -> None:
    """Sixteen sendMessage calls of one loop turn to one daemon: their frames leave in
    one write to its link (they made sixteen, each a send() waking the daemon), in seq
    order, and before the turn's COMMIT; every answer still waits for that commit."""
    client = await kit.client()
    conn = kit.gateway.connections[(APP, client.cid)]
    store = kit.gateway.store
    assert isinstance(store, SqliteStore) and conn._link is not None
    transport: Any = conn._link.transport
    events: list[str] = []
    real_write = transport.write

    def write(data: bytes) -> None:
        events.append("write")
        real_write(data)

    transport.write = write
    store.sync._db.set_trace_callback(lambda sql: events.append(sql) if sql == "COMMIT" else None)
    try:
        answers = await asyncio.gather(
            *(kit.gateway.send_message(APP, body(client.cid, title=f"t{n}")) for n in range(16))
        )
    finally:
        store.sync._db.set_trace_callback(None)
        del transport.write
    assert all(a["errCode"] == 0 for a in answers)
    assert events[:2] == ["write", "COMMIT"], events
    pushes = [await client.next_push() for _ in range(16)]
    assert [p["message"]["title"] for p in pushes] == [f"t{n}" for n in range(16)]
    assert [p["seq"] for p in pushes] == sorted(p["seq"] for p in pushes)
    await client.no_push(0.05)


async def test_a_retry_after_a_crash_before_the_commit_is_the_same_message(
    tmp_path: Path,
) -> None:
    """The gateway dies after the push left, before its commit: the sender had no
    answer and retries with its request_id; the push it makes carries the same id, so
    the daemon, which has the first already, drops it (its redelivery filter)."""
    request_id = "retry-0123456789"
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        client = await kit.client()
        cid = client.cid
        release, _ = hold_commits(kit)
        sending = asyncio.ensure_future(kit.call("sendMessage", body(cid, request_id=request_id)))
        first = await client.next_push()
        store = kit.gateway.store
        assert isinstance(store, SqliteStore)
        store.sync._db.execute("ROLLBACK")  # the crash: the commit never happens
        sending.cancel()
        release.set()  # (lets the handler end, so the gateway stops at once)
        await client.ws.close()
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        again = await kit.client(cid=cid, acked=first["seq"])
        status, answer = await kit.call("sendMessage", body(cid, request_id=request_id))
        assert status == 200, answer
        second = await again.next_push()
    assert second["id"] == first["id"] == message_id(APP, cid, request_id)
    assert json.dumps(second["message"]["payload"]) == json.dumps(first["message"]["payload"])


def test_message_ids_are_per_request_and_cid_and_random_without_a_request_id() -> None:
    a = message_id(APP, "c1", "request-000001")
    assert a == message_id(APP, "c1", "request-000001")
    assert (
        len(
            {
                a,
                message_id(APP, "c2", "request-000001"),
                message_id("__UNI__B", "c1", "request-000001"),
            }
        )
        == 3
    )
    assert message_id(APP, "c1", None) != message_id(APP, "c1", None)


def test_a_failed_unit_alone_does_not_leave_the_transaction_open(
    db: sqlite3.Connection,
) -> None:
    group = GroupCommit(db)
    with pytest.raises(sqlite3.IntegrityError), group.unit():
        db.execute("INSERT INTO t VALUES ('x', NULL)")
    assert not db.in_transaction  # the write lock is not held past the failure

"""The WAL checkpointer (sqlitedb.Checkpointer) on a real SQLite file: it keeps the WAL
checkpointed while commits come, and an idle store does not wake its thread twice a
second (an idle desktop daemon and its embedded gateway had four wake-ups a second,
all from two checkpointers)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from unipush_bridge.runtime.store import Store
from unipush_bridge.sqlitedb import Checkpointer, GroupCommit, open_db, transaction


def wakeups(thread_id: int) -> int:
    """Context switches of one thread of this process, as the kernel counts them."""
    total = 0
    for line in Path(f"/proc/self/task/{thread_id}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            total += int(line.split()[1])
    return total


def unchecked_frames(path: Path) -> int:
    """WAL frames not yet copied into the database, read from another connection."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        # A zero-frame PASSIVE call reads the counts; it copies nothing when the other
        # connection's checkpoint already did.
        _, log, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(log) - int(done)
    finally:
        other.close()


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = open_db(tmp_path / "c.sqlite3", "NORMAL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    return conn


def test_an_idle_store_backs_off_to_rare_wakeups(db: sqlite3.Connection, tmp_path: Path) -> None:
    cp = Checkpointer(db, tmp_path / "c.sqlite3", every_s=0.02)
    try:
        tid = cp._thread.native_id
        assert tid is not None
        time.sleep(0.2)  # its first rounds
        before = wakeups(tid)
        time.sleep(1.0)
        # A fixed 20 ms period is 50 rounds a second; doubling from there reaches
        # 0.64 s within the first second, so at most a handful.
        assert wakeups(tid) - before <= 6
    finally:
        cp.close()


def test_a_commit_wakes_it_and_the_wal_is_checkpointed(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "c.sqlite3"
    cp = Checkpointer(db, path, every_s=0.05, idle_s=30.0)
    try:
        time.sleep(0.5)  # backed off: the next unprompted round is seconds away
        runs = cp.checkpoints
        with transaction(db):
            db.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 500,)] * 200)
        deadline = time.monotonic() + 2
        while cp.checkpoints == runs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cp.checkpoints > runs, "a commit did not wake the checkpointer"
        assert unchecked_frames(path) == 0
    finally:
        cp.close()


def test_a_group_commit_wakes_it(db: sqlite3.Connection, tmp_path: Path) -> None:
    cp = Checkpointer(db, tmp_path / "c.sqlite3", every_s=0.05, idle_s=30.0)
    group = GroupCommit(db)

    async def write() -> None:
        with group.unit():
            db.execute("INSERT INTO t (v) VALUES ('y')")
        await group.synced()

    try:
        time.sleep(0.5)
        runs = cp.checkpoints
        asyncio.run(write())
        deadline = time.monotonic() + 2
        while cp.checkpoints == runs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cp.checkpoints > runs
    finally:
        cp.close()


def test_close_does_not_wait_out_a_long_idle_round(db: sqlite3.Connection, tmp_path: Path) -> None:
    cp = Checkpointer(db, tmp_path / "c.sqlite3", every_s=0.05, idle_s=30.0)
    time.sleep(0.3)
    started = time.monotonic()
    cp.close()
    assert time.monotonic() - started < 1.0
    assert not cp._thread.is_alive()


def test_the_daemon_stores_push_path_commits_wake_it_too(tmp_path: Path) -> None:
    """The daemon records pushes on a second connection (NORMAL): its commits must
    neither run SQLite's own checkpoint inside them nor go unnoticed."""
    store = Store(tmp_path / "d.sqlite3")
    try:
        hot = store._hot
        assert hot.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert getattr(hot, "on_commit", None) is not None
    finally:
        store.close()


def test_a_sustained_stream_of_commits_does_not_grow_the_wal_without_end(tmp_path: Path) -> None:
    """Sixteen writers a loop turn, committed together and without a pause (a gateway
    under a sendMessage flood): a PASSIVE checkpoint never caught up with the last
    commit, SQLite never reset the WAL, and it grew by 45 MB a second for as long as
    the flood lasted. Past the limit it is made to start over."""
    path = tmp_path / "g.sqlite3"
    db = open_db(path, "NORMAL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    limit = 2 * 1024 * 1024
    cp = Checkpointer(db, path, every_s=0.05, wal_limit=limit)
    group = GroupCommit(db)
    wal = Path(f"{path}-wal")
    peak = 0

    async def one() -> None:
        with group.unit():
            db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 2000,))
        await group.synced()

    async def flood() -> None:
        nonlocal peak
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            await asyncio.gather(*(one() for _ in range(16)))
            peak = max(peak, os.stat(wal).st_size)

    try:
        asyncio.run(flood())
        written = db.execute("SELECT count(*) FROM t").fetchone()[0] * 2000
        assert written > 8 * limit, "the flood was too small to tell"
        # Unbounded, the WAL holds at least everything written; bounded, the limit and
        # what the commits between two checkpointer rounds add (a loaded machine
        # stretches the rounds, so no tighter figure than this).
        assert peak < written / 3, f"WAL peaked at {peak} bytes, {written} written"
    finally:
        cp.close()
        db.close()

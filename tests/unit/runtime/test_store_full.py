"""issue 10 item 21 (and the runtime half of 11): SQLite's own errors on a real file,
mapped at the store boundary to text a user can act on.

``PRAGMA max_page_count`` makes SQLite answer SQLITE_FULL ("database or disk is full")
exactly as a full disk does, on any file system and without root; the real full disk
is tests/integration/test_full_disk.py.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from pathlib import Path

import pytest

from tests.unit.runtime.test_driver import APPID, Screen, make, msg
from unipush_bridge.errors import ApiFail, StoreDamaged
from unipush_bridge.runtime.store import Store
from unipush_bridge.sqlitedb import StoreBroken, StoreFull, open_db, os_store_error, store_error

__all__ = ["APPID"]


def capped(store: Store) -> Store:
    """No more pages than it has: the next write that needs one is SQLITE_FULL (on
    either connection: the push path's has its own)."""
    (pages,) = store._db.execute("PRAGMA page_count").fetchone()
    for db in (store._db, store._hot):
        db.execute(f"PRAGMA max_page_count={pages}")
    return store


def test_a_full_store_says_state_dir_full(tmp_path: Path) -> None:
    """issue 10 item 21: a push that cannot be recorded names the state dir."""
    path = tmp_path / "state" / "inbox.sqlite3"
    path.parent.mkdir()
    store = capped(Store(path))
    with pytest.raises(StoreFull) as caught:
        for n in range(200):
            store.record_batch("gw", APPID, [(n + 1, f"id{n}", {"payload": "x" * 2000})])
    assert str(caught.value).startswith(f"state dir full: {path.parent} (inbox.sqlite3: ")
    assert isinstance(caught.value, sqlite3.OperationalError)  # old except clauses still apply
    store.close()


async def test_create_push_message_on_a_full_store_fails_with_the_reason(tmp_path: Path) -> None:
    """issue 10 item 21: createPushMessage:fail state dir full, not an internal error."""
    store = Store(tmp_path / "s.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    driver = make(store, Screen())
    await driver.start()
    capped(store)
    with pytest.raises(ApiFail, match=f"^state dir full: {re.escape(str(tmp_path))} "):
        for n in range(200):
            await driver.create_push_message({"content": f"{n}" * 500, "delay": 60})
    await driver.stop(0.1)


async def test_a_full_store_fails_the_batch_with_the_reason(tmp_path: Path) -> None:
    """issue 10 item 21: what the link sees (and puts in status' last_error)."""
    store = Store(tmp_path / "s.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    driver = make(store, Screen())
    await driver.start()
    capped(store)
    with pytest.raises(StoreFull, match=r"^state dir full: "):
        for n in range(200):
            driver.record([(n + 1, f"m{n}", msg(n, content="y" * 2000))])
    await driver.stop(0.1)


def test_sqlite_errors_map_to_what_the_user_can_do(tmp_path: Path) -> None:
    """issue 10 items 11 and 21: each code names the file and the fix; others pass."""
    path = tmp_path / "x.sqlite3"

    def error(name: str, text: str) -> sqlite3.Error:
        exc = sqlite3.OperationalError(text)
        exc.sqlite_errorname = name  # type: ignore[attr-defined]
        return exc

    full = store_error(path, error("SQLITE_FULL", "database or disk is full"))
    assert isinstance(full, StoreFull) and full.exit_code == 1
    damaged = store_error(path, error("SQLITE_NOTADB", "file is not a database"))
    assert isinstance(damaged, StoreBroken) and isinstance(damaged, StoreDamaged)
    assert damaged.exit_code == 2 and f"store {path} is damaged" in str(damaged)
    readonly = store_error(path, error("SQLITE_READONLY", "attempt to write a readonly database"))
    assert f"store {path} is read-only" in str(readonly)
    other = error("SQLITE_CONSTRAINT", "UNIQUE constraint failed")
    assert store_error(path, other) is other
    nospace = os_store_error(tmp_path, OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(nospace, StoreFull) and str(nospace).startswith(f"state dir full: {tmp_path}")
    assert os_store_error(tmp_path, OSError(errno.EBADF, "Bad file descriptor")) is None


def test_open_db_names_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """issue 10 item 11: the opener both stores use."""
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"not a database at all, just text" * 100)
    with pytest.raises(StoreBroken, match=r"is damaged \(file is not a database\): move it aside"):
        open_db(path, "NORMAL")


async def test_a_history_write_the_full_disk_refused_strands_no_push(tmp_path: Path) -> None:
    """The batch is recorded (and acknowledged); then the disk fills and the history
    row of the first notification cannot be written. The core has decided for the
    whole batch: the other two must still be shown (they were stuck in "showing"
    until a restart), and the failure still reaches the link."""
    store = Store(tmp_path / "s.sqlite3")
    store.save_identity("embedded", APPID, "c" * 32, 0)
    screen = Screen()
    driver = make(store, screen)
    await driver.start()
    pushes = [(n, f"m{n}", msg(n, content="z" * 4000)) for n in (1, 2, 3)]
    fresh = driver.record(pushes)
    (pages,) = store._db.execute("PRAGMA page_count").fetchone()
    store._db.execute(f"PRAGMA max_page_count={pages}")  # the history's connection only
    with pytest.raises(StoreFull):
        await driver.hand_on(fresh)
    assert [r.title for r in screen.shown] == ["t1", "t2", "t3"]
    assert store.count("pending") == 0
    await driver.stop(0.1)

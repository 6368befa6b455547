"""SQLite as both stores use it: a private file, WAL, explicit transactions."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


def open_db(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open (creating) a database only this user can read; autocommit unless a
    transaction() is open. ``synchronous``: FULL survives power loss, NORMAL a crash."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    os.chmod(path, 0o600)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    # The checkpointer's connection may hold a lock for a moment: wait, do not fail.
    db.execute("PRAGMA busy_timeout=10000")
    return db


class Checkpointer:
    """WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside
    whichever COMMIT takes the WAL past 1000 pages and fsyncs the WAL and the database
    there: 2 to 20 ms on the loop every few hundred messages, the whole p99 of a push.
    So it is off for ``db``, and a thread with a connection of its own checkpoints
    (PASSIVE: it never blocks the writer) every ``every_s`` seconds instead."""

    def __init__(self, db: sqlite3.Connection, path: Path, every_s: float = 0.5) -> None:
        db.execute("PRAGMA wal_autocheckpoint=0")
        self._path = path
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sqlite-checkpoint")
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._every):
                with contextlib.suppress(sqlite3.OperationalError):  # busy: next round
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, synchronous: str | None = None) -> Iterator[None]:
    """One commit for everything inside; any exception rolls it all back.
    ``synchronous`` sets the level for this commit only (the connection's is restored)."""
    if synchronous is not None:
        (previous,) = db.execute("PRAGMA synchronous").fetchone()
        db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    else:
        db.execute("COMMIT")
    finally:
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={previous}")

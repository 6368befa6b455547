"""The gateway's SQLite store: registered cids, undelivered messages, request ids.

A message row lives until its cid acknowledges it or its ttl ends; ``seq`` (the
row id) orders a cid's messages and is the cursor the daemon resumes from.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (appid, cid)
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    id TEXT NOT NULL,
    taskid TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_cid ON messages (appid, cid, seq);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at);
CREATE TABLE IF NOT EXISTS requests (
    appid TEXT NOT NULL,
    request_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (appid, request_id)
);
"""


class GatewayStore:
    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._clock = clock

    def close(self) -> None:
        self._db.close()

    # clients -------------------------------------------------------------------

    def known(self, appid: str, cid: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM clients WHERE appid=? AND cid=?", (appid, cid)
        ).fetchone()
        return row is not None

    def register(self, appid: str, cid: str, acked: int) -> int:
        """Register (or re-register) a cid; returns the cursor the session resumes from."""
        now = self._clock()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT acked FROM clients WHERE appid=? AND cid=?", (appid, cid)
            ).fetchone()
            if row is None:
                # A cid we have no record of (new, or our data was reset): the client's
                # cursor counts seqs of a store we no longer have, so start from zero.
                self._db.execute(
                    "INSERT INTO clients (appid, cid, acked, created_at, last_seen) "
                    "VALUES (?, ?, 0, ?, ?)",
                    (appid, cid, now, now),
                )
                cursor = 0
            else:
                self._db.execute(
                    "UPDATE clients SET last_seen=? WHERE appid=? AND cid=?", (now, appid, cid)
                )
                cursor = max(int(row[0]), acked)
            self._ack(appid, cid, cursor)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return cursor

    def touch(self, appid: str, cid: str) -> None:
        self._db.execute(
            "UPDATE clients SET last_seen=? WHERE appid=? AND cid=?", (self._clock(), appid, cid)
        )

    # messages ------------------------------------------------------------------

    def add_message(
        self, appid: str, cid: str, msg_id: str, taskid: str, body: dict[str, Any], ttl_s: float
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO messages (appid, cid, id, taskid, body, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                appid,
                cid,
                msg_id,
                taskid,
                json.dumps(body, ensure_ascii=False),
                self._clock() + ttl_s,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def after(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Unexpired messages for a cid after ``seq``, in order."""
        rows = self._db.execute(
            "SELECT seq, id, body FROM messages WHERE appid=? AND cid=? AND seq>? "
            "AND expires_at>? ORDER BY seq LIMIT ?",
            (appid, cid, seq, self._clock(), limit),
        ).fetchall()
        return [(int(r[0]), r[1], json.loads(r[2])) for r in rows]

    def ack(self, appid: str, cid: str, seq: int) -> None:
        self._ack(appid, cid, seq)

    def _ack(self, appid: str, cid: str, seq: int) -> None:
        self._db.execute(
            "DELETE FROM messages WHERE appid=? AND cid=? AND seq<=?", (appid, cid, seq)
        )
        self._db.execute(
            "UPDATE clients SET acked=MAX(acked, ?) WHERE appid=? AND cid=?", (seq, appid, cid)
        )

    def purge_expired(self) -> int:
        cur = self._db.execute("DELETE FROM messages WHERE expires_at<=?", (self._clock(),))
        return cur.rowcount

    def pending_count(self, appid: str, cid: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE appid=? AND cid=? AND expires_at>?",
            (appid, cid, self._clock()),
        ).fetchone()
        return int(row[0])

    # request_id deduplication ----------------------------------------------------

    def answer_for(self, appid: str, request_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT answer FROM requests WHERE appid=? AND request_id=?", (appid, request_id)
        ).fetchone()
        if row is None:
            return None
        answer: dict[str, Any] = json.loads(row[0])
        return answer

    def remember_answer(self, appid: str, request_id: str, answer: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO requests (appid, request_id, answer, at) VALUES (?, ?, ?, ?)",
            (appid, request_id, json.dumps(answer), self._clock()),
        )

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

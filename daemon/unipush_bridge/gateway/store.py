"""The gateway's SQLite store: registered cids, undelivered messages, request ids.

A message row lives until its cid acknowledges it or its ttl ends; ``seq`` (the
row id) orders a cid's messages and is the cursor the daemon resumes from. A cid's
row holds the sha256 of its daemon's secret (the proof of ownership) and the highest
seq issued to it (no cursor is trusted beyond it); ``deliveries`` remembers which cid
was sent which message of which task, so only real targets' receipts count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..sqlitedb import Checkpointer, GroupCommit, open_db, transaction

#: The report filter for one day: tasks made from the first time to before the second
#: (getReportByDate, and tasks_made; the Redis store reads its task-time index).
DAY = "created_at>=? AND created_at<?"
#: A task's counters, as the reports answer them (uni's names).
COUNTERS = ("msg_num", "target_num", "receive_num", "display_num", "click_num")
#: How a broadcast's task id starts (the others: "RASL"), as uni's do.
BROADCAST_TASK = "RASA"

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    secret_hash TEXT,
    issued INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (appid, cid)
);
CREATE INDEX IF NOT EXISTS clients_by_last_seen ON clients (last_seen);
CREATE TABLE IF NOT EXISTS deliveries (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    id TEXT NOT NULL,
    taskid TEXT NOT NULL,
    at REAL NOT NULL,
    displayed INTEGER NOT NULL DEFAULT 0,
    clicked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (appid, cid, id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (at);
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
CREATE TABLE IF NOT EXISTS aliases (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    alias TEXT NOT NULL,
    PRIMARY KEY (appid, cid)
);
CREATE INDEX IF NOT EXISTS aliases_by_alias ON aliases (appid, alias);
CREATE TABLE IF NOT EXISTS tags (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (appid, cid, tag)
);
CREATE INDEX IF NOT EXISTS tags_by_tag ON tags (appid, tag);
CREATE TABLE IF NOT EXISTS uniid (
    appid TEXT NOT NULL,
    cid TEXT NOT NULL,
    user_id TEXT,
    device_id TEXT,
    PRIMARY KEY (appid, cid)
);
CREATE TABLE IF NOT EXISTS uniid_tags (
    appid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (appid, user_id, tag)
);
CREATE TABLE IF NOT EXISTS tasks (
    taskid TEXT PRIMARY KEY,
    appid TEXT NOT NULL,
    group_name TEXT,
    created_at REAL NOT NULL,
    target_num INTEGER NOT NULL DEFAULT 0,
    msg_num INTEGER NOT NULL DEFAULT 0,
    receive_num INTEGER NOT NULL DEFAULT 0,
    display_num INTEGER NOT NULL DEFAULT 0,
    click_num INTEGER NOT NULL DEFAULT 0
);
-- Only tasks with a group: most have none, and a NULL entry would cost every
-- sendMessage a write for a report nobody can ask for.
DROP INDEX IF EXISTS tasks_by_group;
CREATE INDEX IF NOT EXISTS tasks_by_group_name ON tasks (appid, group_name)
    WHERE group_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (appid, created_at);
CREATE TABLE IF NOT EXISTS requests (
    appid TEXT NOT NULL,
    request_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (appid, request_id)
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (at);
"""


#: A receipt counts only this long after its message was stored (ttl is 3 days at most;
#: a notification may wait on screen for a while before it is clicked).
RECEIPT_WINDOW_S = 30 * 86_400
#: A request_id's answer is kept this long, on both stores: uni documents no window for
#: its dedupe, and 3 days is the longest a message may wait for its device (ttl), so a
#: sender retrying a push that may still be delivered is always answered from memory.
REQUEST_ANSWER_TTL_S = 3 * 86_400


def secret_hash(secret: str) -> str:
    """What the store keeps of a daemon's secret: its sha256, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientRecord:
    #: sha256 hex of the secret the cid is bound to; None: not bound yet (legacy).
    secret_hash: str | None
    acked: int
    #: Highest seq stored for this cid: a cursor beyond it is never trusted.
    issued: int


class GatewayStore:
    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        # NORMAL: a committed message survives a killed gateway, not a power cut.
        # 32 MB of page cache: past SQLite's 2 MB default (about 10,000 waiting
        # messages) every sendMessage read index pages back from the OS (issue 17
        # item 5: 116 against 80 us of store work per request at 20,000 waiting).
        self._db = open_db(path, "NORMAL", cache_mb=32)
        self._checkpointer = Checkpointer(self._db, path)
        self._clock = clock
        self._db.executescript(SCHEMA)
        self._migrate()
        self._group = GroupCommit(self._db)

    def _migrate(self) -> None:
        """A store written before cid secrets and issued seqs gets the columns. Its cids
        stay unbound (the daemon's next hello with a secret binds them), and their issued
        seq is the highest seq this store ever gave out: an honest cursor is at or below
        it, and one pushed past every future seq by a hostile ack is pulled back to it."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(clients)").fetchall()}
        if "issued" in columns:
            return  # a new file (SCHEMA made it whole) or one migrated already
        with transaction(self._db):
            if "secret_hash" not in columns:
                self._db.execute("ALTER TABLE clients ADD COLUMN secret_hash TEXT")
            self._db.execute("ALTER TABLE clients ADD COLUMN issued INTEGER NOT NULL DEFAULT 0")
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name='messages'"
            ).fetchone()
            self._db.execute("UPDATE clients SET issued=?", (int(row[0]) if row else 0,))
            # Receipts for messages still waiting count as they would have.
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries (appid, cid, id, taskid, at) "
                "SELECT appid, cid, id, taskid, ? FROM messages",
                (self._clock(),),
            )

    def close(self) -> None:
        self._group.flush()
        self._checkpointer.close()
        self._db.close()

    # clients -------------------------------------------------------------------

    def known(self, appid: str, cid: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM clients WHERE appid=? AND cid=?", (appid, cid)
        ).fetchone()
        return row is not None

    def known_many(self, appid: str, cids: list[str]) -> set[str]:
        return {cid for cid in cids if self.known(appid, cid)}

    def client(self, appid: str, cid: str) -> ClientRecord | None:
        row = self._db.execute(
            "SELECT secret_hash, acked, issued FROM clients WHERE appid=? AND cid=?",
            (appid, cid),
        ).fetchone()
        return None if row is None else ClientRecord(row[0], int(row[1]), int(row[2]))

    def register(self, appid: str, cid: str, acked: int, secret_hash: str | None = None) -> int:
        """Register (or re-register) a cid; returns the cursor the session resumes from.
        ``secret_hash`` binds a cid that is not bound yet; the caller has checked it
        against a bound one (see GatewayService.register)."""
        now = self._clock()
        with self.transaction():
            row = self.client(appid, cid)
            if row is None:
                # A cid we have no record of (new, or our data was reset): the client's
                # cursor counts seqs of a store we no longer have, so start from zero.
                self._db.execute(
                    "INSERT INTO clients (appid, cid, acked, created_at, last_seen, "
                    "secret_hash) VALUES (?, ?, 0, ?, ?, ?)",
                    (appid, cid, now, now, secret_hash),
                )
                cursor = 0
            else:
                self._db.execute(
                    "UPDATE clients SET last_seen=?, secret_hash=COALESCE(secret_hash, ?) "
                    "WHERE appid=? AND cid=?",
                    (now, secret_hash, appid, cid),
                )
                cursor = resume_cursor(row, acked)
                if cursor < row.acked:  # our own cursor was past what we issued
                    self._db.execute(
                        "UPDATE clients SET acked=? WHERE appid=? AND cid=?", (cursor, appid, cid)
                    )
            self._ack(appid, cid, cursor)
        return cursor

    def touch(self, appid: str, cid: str) -> None:
        self._db.execute(
            "UPDATE clients SET last_seen=? WHERE appid=? AND cid=?", (self._clock(), appid, cid)
        )

    # messages ------------------------------------------------------------------

    def add_message(
        self,
        appid: str,
        cid: str,
        msg_id: str,
        taskid: str,
        body: dict[str, Any] | str,
        ttl_s: float,
    ) -> int:
        """``body`` may come encoded already (a broadcast encodes it once for all)."""
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        now = self._clock()
        cur = self._db.execute(
            "INSERT INTO messages (appid, cid, id, taskid, body, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (appid, cid, msg_id, taskid, text, now + ttl_s),
        )
        seq = cur.lastrowid
        assert seq is not None
        self._db.execute(
            "UPDATE clients SET issued=MAX(issued, ?) WHERE appid=? AND cid=?", (seq, appid, cid)
        )
        self._db.execute(
            "INSERT OR IGNORE INTO deliveries (appid, cid, id, taskid, at) VALUES (?, ?, ?, ?, ?)",
            (appid, cid, msg_id, taskid, now),
        )
        return seq

    def committed_seq(self, seq: int) -> int:
        """add_message's seq is the row id, known before the commit."""
        return seq

    def after(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Unexpired messages for a cid after ``seq``, in order."""
        return [(s, i, json.loads(b)) for s, i, b in self.after_raw(appid, cid, seq, limit)]

    def after_raw(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, str]]:
        """As after(), with each body as its stored JSON text (the sender's hot path)."""
        rows = self._db.execute(
            "SELECT seq, id, body FROM messages WHERE appid=? AND cid=? AND seq>? "
            "AND expires_at>? ORDER BY seq LIMIT ?",
            (appid, cid, seq, self._clock(), limit),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def ack(self, appid: str, cid: str, seq: int) -> None:
        """Cumulative; the cursor never passes the highest seq issued to the cid (the
        service refuses such an ack; this holds even if a caller does not)."""
        self.ack_many([(appid, cid, seq)])

    def ack_many(self, acks: Iterable[tuple[str, str, int]]) -> None:
        """As ack() for each (appid, cid, seq), in one transaction."""
        with self.transaction():
            for appid, cid, seq in acks:
                self._ack(appid, cid, seq)

    def _ack(self, appid: str, cid: str, seq: int) -> None:
        # What an ack removes was received: count it for the reports first, every task
        # in one statement (each sendMessage is a task: one UPDATE per task was one more
        # statement per push on the ack path).
        self._db.execute(
            "UPDATE tasks SET receive_num=receive_num+r.n FROM (SELECT taskid, COUNT(*) AS n "
            "FROM messages WHERE appid=? AND cid=? AND seq<=? GROUP BY taskid) AS r "
            "WHERE tasks.taskid=r.taskid",
            (appid, cid, seq),
        )
        self._db.execute(
            "DELETE FROM messages WHERE appid=? AND cid=? AND seq<=?", (appid, cid, seq)
        )
        self._db.execute(
            "UPDATE clients SET acked=MAX(acked, MIN(?, issued)) WHERE appid=? AND cid=?",
            (seq, appid, cid),
        )

    def purge_expired(self) -> int:
        """Drop expired messages (the count returned), deliveries past the receipt
        window and request_id answers past theirs."""
        now = self._clock()
        self._db.execute("DELETE FROM deliveries WHERE at<=?", (now - RECEIPT_WINDOW_S,))
        self._db.execute("DELETE FROM requests WHERE at<=?", (now - REQUEST_ANSWER_TTL_S,))
        cur = self._db.execute("DELETE FROM messages WHERE expires_at<=?", (now,))
        return cur.rowcount

    def purge_unseen(self, max_age_s: float, keep: Iterable[tuple[str, str]] = ()) -> int:
        """Forget cids with no hello for ``max_age_s`` (uni expires a cid after three
        months unseen), with their messages, aliases, tags and uni-id mapping; ``keep``
        names the (appid, cid) pairs connected now. Returns how many cids went."""
        online = set(keep)
        stale = [
            (str(a), str(c))
            for a, c in self._db.execute(
                "SELECT appid, cid FROM clients WHERE last_seen<=?", (self._clock() - max_age_s,)
            ).fetchall()
            if (a, c) not in online
        ]
        if not stale:
            return 0
        with self.transaction():
            for table in ("messages", "aliases", "tags", "uniid", "deliveries", "clients"):
                self._db.executemany(f"DELETE FROM {table} WHERE appid=? AND cid=?", stale)
        return len(stale)

    def pending_count(self, appid: str, cid: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE appid=? AND cid=? AND expires_at>?",
            (appid, cid, self._clock()),
        ).fetchone()
        return int(row[0])

    # request_id deduplication ----------------------------------------------------

    def answer_for(self, appid: str, request_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT answer FROM requests WHERE appid=? AND request_id=? AND at>?",
            (appid, request_id, self._clock() - REQUEST_ANSWER_TTL_S),
        ).fetchone()
        if row is None:
            return None
        answer: dict[str, Any] = json.loads(row[0])
        return answer

    def remember_answer(self, appid: str, request_id: str, answer: dict[str, Any]) -> None:
        """The first answer stays while it lasts; one past its time (not purged yet)
        gives way, as the Redis key would have expired."""
        now = self._clock()
        self._db.execute(
            "INSERT INTO requests (appid, request_id, answer, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (appid, request_id) DO UPDATE SET answer=excluded.answer, "
            "at=excluded.at WHERE requests.at<=?",
            (appid, request_id, json.dumps(answer), now, now - REQUEST_ANSWER_TTL_S),
        )

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """All the writes inside, or none; committed with the others of this loop turn
        (see GroupCommit): await synced() before answering that they are done."""
        return self._group.unit()

    async def synced(self) -> None:
        await self._group.synced()

    def before_commit(self, hook: Callable[[], None]) -> None:
        """``hook`` runs before each group commit (see GroupCommit.before_commit)."""
        self._group.before_commit = hook

    # clients: lookups for targets and device methods ------------------------------

    def all_cids(self, appid: str) -> list[str]:
        rows = self._db.execute("SELECT cid FROM clients WHERE appid=?", (appid,)).fetchall()
        return [r[0] for r in rows]

    def clients(self, appid: str, cids: list[str]) -> dict[str, tuple[float, float]]:
        """cid -> (created_at, last_seen) for the cids this gateway knows."""
        found: dict[str, tuple[float, float]] = {}
        for cid in cids:
            row = self._db.execute(
                "SELECT created_at, last_seen FROM clients WHERE appid=? AND cid=?", (appid, cid)
            ).fetchone()
            if row is not None:
                found[cid] = (float(row[0]), float(row[1]))
        return found

    # aliases ---------------------------------------------------------------------

    def alias_of(self, appid: str, cid: str) -> str | None:
        row = self._db.execute(
            "SELECT alias FROM aliases WHERE appid=? AND cid=?", (appid, cid)
        ).fetchone()
        return None if row is None else str(row[0])

    def cids_of_alias(self, appid: str, alias: str) -> list[str]:
        rows = self._db.execute(
            "SELECT cid FROM aliases WHERE appid=? AND alias=? ORDER BY cid", (appid, alias)
        ).fetchall()
        return [r[0] for r in rows]

    def bind_alias(self, appid: str, cid: str, alias: str) -> None:
        self._db.execute(
            "INSERT INTO aliases (appid, cid, alias) VALUES (?, ?, ?) "
            "ON CONFLICT (appid, cid) DO UPDATE SET alias=excluded.alias",
            (appid, cid, alias),
        )

    def unbind_alias(self, appid: str, cid: str, alias: str) -> None:
        self._db.execute(
            "DELETE FROM aliases WHERE appid=? AND cid=? AND alias=?", (appid, cid, alias)
        )

    def unbind_all_alias(self, appid: str, alias: str) -> None:
        self._db.execute("DELETE FROM aliases WHERE appid=? AND alias=?", (appid, alias))

    # custom tags -------------------------------------------------------------------

    def tags_of(self, appid: str, cid: str) -> list[str]:
        rows = self._db.execute(
            "SELECT tag FROM tags WHERE appid=? AND cid=? ORDER BY tag", (appid, cid)
        ).fetchall()
        return [r[0] for r in rows]

    def set_tags(self, appid: str, cid: str, tags: list[str]) -> None:
        self._db.execute("DELETE FROM tags WHERE appid=? AND cid=?", (appid, cid))
        self._db.executemany(
            "INSERT OR IGNORE INTO tags (appid, cid, tag) VALUES (?, ?, ?)",
            [(appid, cid, tag) for tag in tags],
        )

    def add_tag(self, appid: str, cid: str, tag: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO tags (appid, cid, tag) VALUES (?, ?, ?)", (appid, cid, tag)
        )

    def remove_tag(self, appid: str, cid: str, tag: str) -> None:
        self._db.execute("DELETE FROM tags WHERE appid=? AND cid=? AND tag=?", (appid, cid, tag))

    def cids_with_tag(self, appid: str, tag: str) -> list[str]:
        rows = self._db.execute(
            "SELECT cid FROM tags WHERE appid=? AND tag=? ORDER BY cid", (appid, tag)
        ).fetchall()
        return [r[0] for r in rows]

    # uni-id mapping (what uni-id-device and opendb-device hold on uniCloud) ------

    def bind_uniid(self, appid: str, cid: str, user_id: str | None, device_id: str | None) -> None:
        self._db.execute(
            "INSERT INTO uniid (appid, cid, user_id, device_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (appid, cid) DO UPDATE SET user_id=excluded.user_id, "
            "device_id=excluded.device_id",
            (appid, cid, user_id, device_id),
        )

    def set_user_tags(self, appid: str, user_id: str, tags: list[str]) -> None:
        self._db.execute("DELETE FROM uniid_tags WHERE appid=? AND user_id=?", (appid, user_id))
        self._db.executemany(
            "INSERT OR IGNORE INTO uniid_tags (appid, user_id, tag) VALUES (?, ?, ?)",
            [(appid, user_id, tag) for tag in tags],
        )

    def has_uniid(self, appid: str) -> bool:
        row = self._db.execute("SELECT 1 FROM uniid WHERE appid=? LIMIT 1", (appid,)).fetchone()
        return row is not None

    def cids_for_users(self, appid: str, user_ids: list[str]) -> list[str]:
        return self._cids_where(appid, "user_id", user_ids)

    def cids_for_devices(self, appid: str, device_ids: list[str]) -> list[str]:
        return self._cids_where(appid, "device_id", device_ids)

    def cids_for_user_tags(self, appid: str, tags: list[str]) -> list[str]:
        marks = ",".join("?" * len(tags))
        rows = self._db.execute(
            f"SELECT DISTINCT u.cid FROM uniid u JOIN uniid_tags t ON "
            f"u.appid=t.appid AND u.user_id=t.user_id WHERE u.appid=? AND t.tag IN ({marks}) "
            "ORDER BY u.cid",
            (appid, *tags),
        ).fetchall()
        return [r[0] for r in rows]

    def _cids_where(self, appid: str, column: str, values: list[str]) -> list[str]:
        marks = ",".join("?" * len(values))
        rows = self._db.execute(
            f"SELECT cid FROM uniid WHERE appid=? AND {column} IN ({marks}) ORDER BY cid",
            (appid, *values),
        ).fetchall()
        return [r[0] for r in rows]

    # tasks and their counters ------------------------------------------------------

    def add_task(
        self, appid: str, taskid: str, group_name: str | None, target_num: int, msg_num: int
    ) -> None:
        self._db.execute(
            "INSERT INTO tasks (taskid, appid, group_name, created_at, target_num, msg_num) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (taskid, appid, group_name, self._clock(), target_num, msg_num),
        )

    def count_receipt(self, appid: str, cid: str, msg_id: str, taskid: str, event: str) -> bool:
        """Count a display or click once per message, and only for a message of that
        task that was sent to that cid; False when the receipt counted nothing."""
        flag, column = {"display": ("displayed", "display_num"), "click": ("clicked", "click_num")}[
            event
        ]
        with self.transaction():
            cur = self._db.execute(
                f"UPDATE deliveries SET {flag}=1 WHERE appid=? AND cid=? AND id=? AND taskid=? "
                f"AND {flag}=0",
                (appid, cid, msg_id, taskid),
            )
            if cur.rowcount != 1:
                return False
            self._db.execute(
                f"UPDATE tasks SET {column}={column}+1 WHERE taskid=? AND appid=?",
                (taskid, appid),
            )
        return True

    def report(self, appid: str, where: str, args: tuple[Any, ...]) -> dict[str, int] | None:
        """Summed counters of the app's tasks matching ``where`` (a fixed SQL fragment)."""
        row = self._db.execute(
            "SELECT COUNT(*), SUM(msg_num), SUM(target_num), SUM(receive_num), "
            f"SUM(display_num), SUM(click_num) FROM tasks WHERE appid=? AND {where}",
            (appid, *args),
        ).fetchone()
        if not row[0]:
            return None
        return {k: int(v or 0) for k, v in zip(COUNTERS, row[1:], strict=True)}

    def tasks_made(self, appid: str, start: float, end: float) -> tuple[int, int]:
        """(broadcasts, other pushes) the app made from ``start`` to before ``end``."""
        row = self._db.execute(
            f"SELECT COUNT(*), SUM(taskid LIKE '{BROADCAST_TASK}%') FROM tasks "
            f"WHERE appid=? AND {DAY}",
            (appid, start, end),
        ).fetchone()
        broadcasts = int(row[1] or 0)
        return broadcasts, int(row[0]) - broadcasts


def resume_cursor(row: ClientRecord, acked: int) -> int:
    """Where a known cid resumes: the larger of our cursor and the daemon's, but never
    past the highest seq we issued to the cid. A daemon cursor beyond that (a hostile
    hello, or our data restored from a backup older than the daemon's) is not trusted:
    we resume from our own cursor, itself capped, and the daemon adopts it."""
    if acked > row.issued:
        return min(row.acked, row.issued)
    return min(max(row.acked, acked), row.issued)

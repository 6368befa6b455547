"""The daemon's durable state in one SQLite file: identity, cursor, inbox, pending click.

A push is written here (and committed) before it is acknowledged, so a crash after
the ack never loses it; the inbox row stays ``pending`` until it has reached a
listener or the screen, so a crash before that replays it on the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..sqlitedb import Checkpointer, open_db, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity (
    gateway TEXT NOT NULL,
    appid TEXT NOT NULL,
    cid TEXT,
    acked INTEGER NOT NULL DEFAULT 0,
    -- sent in every hello: the gateway binds the cid to it (only its hash is kept there)
    secret TEXT,
    PRIMARY KEY (gateway, appid)
);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    -- pending: recorded, not yet handed on; held: waits for a listener; done: handed on
    state TEXT NOT NULL DEFAULT 'pending',
    received_at REAL NOT NULL,
    -- 1: held only for want of a notification server (the next run shows it)
    wait_server INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_state ON inbox (state, received_at);
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scheduled (
    id TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    due_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id TEXT PRIMARY KEY,
    shown_at REAL NOT NULL,
    source TEXT NOT NULL,
    channel TEXT,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    data TEXT NOT NULL,
    clicked_at REAL
);
CREATE INDEX IF NOT EXISTS history_by_time ON history (shown_at);
-- one row: the quiet hours toggle (NULL: follow the schedule) and what it held back
CREATE TABLE IF NOT EXISTS quiet (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    override INTEGER,
    unread INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_click (
    appid TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    at REAL NOT NULL
);
"""

PENDING = "pending"
HELD = "held"
DONE = "done"


class Store:
    """Synchronous on purpose: each call is one short transaction on a local file."""

    def __init__(self, path: Path, keep_done: int = 10_000) -> None:
        self.path = path
        self.keep_done = keep_done
        # FULL: what the daemon writes survives power loss, not just a crash. The two
        # writes on a push's path (record_batch, mark_many) commit on a connection of
        # their own at NORMAL instead (no fsync in the commit: ~50 us, not ~350 us; and
        # no PRAGMA switched to and back around each commit) and are made durable by
        # sync(), which the link awaits before it acknowledges.
        self._db = open_db(path, "FULL")
        self._db.executescript(SCHEMA)
        # Columns added since the first release; what an older store's rows get:
        # - identity.secret: none yet (a store from before cid secrets keeps its cid;
        #   secret() makes one on first use);
        # - history.not_shown, open_url: none (every older row was shown, and opens no
        #   URL when the tray's menu chooses it);
        # - inbox.wait_server: 0 (older held rows wait for a listener, as they did);
        # - pending_click.click_id: none (the core gives such a click an id at start).
        self._add_column("identity", "secret", "TEXT")
        self._add_column("history", "not_shown", "TEXT")
        self._add_column("history", "open_url", "TEXT")
        self._add_column("inbox", "wait_server", "INTEGER NOT NULL DEFAULT 0")
        self._add_column("pending_click", "click_id", "TEXT")
        self._hot = open_db(path, "NORMAL")
        self._done_since_prune = 0
        self._wal = os.open(f"{path}-wal", os.O_RDONLY | os.O_CLOEXEC)  # WAL mode keeps it
        self._checkpointer = Checkpointer(self._db, path, writers=(self._hot,))

    def close(self) -> None:
        self._checkpointer.close()
        if self._wal >= 0:
            os.close(self._wal)
            self._wal = -1
        self._hot.close()
        self._db.close()

    def sync(self) -> None:
        """fsync the WAL: every commit so far survives power loss, as FULL would have.
        Blocking; the driver runs it in a thread of its own."""
        os.fsync(self._wal)

    # identity and cursor -------------------------------------------------------

    def identity(self, gateway: str, appid: str) -> tuple[str | None, int]:
        row = self._db.execute(
            "SELECT cid, acked FROM identity WHERE gateway=? AND appid=?", (gateway, appid)
        ).fetchone()
        return (row[0], int(row[1])) if row else (None, 0)

    def _add_column(self, table: str, column: str, decl: str) -> None:
        """``table.column`` on a store made before it existed (SCHEMA has it for new ones)."""
        columns = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})").fetchall()}
        if column not in columns:
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def secret(self, gateway: str, appid: str) -> str:
        """This install's secret for a gateway and appid, made once and kept (committed
        before it is first sent, so the cid it binds is never lost to a crash)."""
        row = self._db.execute(
            "SELECT secret FROM identity WHERE gateway=? AND appid=?", (gateway, appid)
        ).fetchone()
        if row is not None and row[0]:
            return str(row[0])
        made = secrets.token_hex(32)
        self._db.execute(
            "INSERT INTO identity (gateway, appid, cid, acked, secret) VALUES (?, ?, NULL, 0, ?) "
            "ON CONFLICT (gateway, appid) DO UPDATE SET secret=COALESCE(secret, excluded.secret)",
            (gateway, appid, made),
        )
        return self.secret(gateway, appid)

    def save_identity(self, gateway: str, appid: str, cid: str, acked: int) -> None:
        """Store the cid and the cursor the gateway resumes from."""
        self._db.execute(
            "INSERT INTO identity (gateway, appid, cid, acked) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (gateway, appid) DO UPDATE SET cid=excluded.cid, acked=excluded.acked",
            (gateway, appid, cid, acked),
        )

    # inbox ---------------------------------------------------------------------

    def record(self, gateway: str, appid: str, seq: int, msg_id: str, body: dict[str, Any]) -> bool:
        """Record a push and advance the cursor in one commit; False if seen before."""
        return self.record_batch(gateway, appid, [(seq, msg_id, body)])[0]

    def record_batch(
        self, gateway: str, appid: str, pushes: list[tuple[int, str, dict[str, Any]]]
    ) -> list[bool]:
        """Record pushes and advance the cursor in one commit. It survives a crash at
        once and power loss after sync(): acknowledge only after that.
        Each flag says whether that push is new (False: a redelivery, dropped)."""
        if not pushes:
            return []
        now = time.time()
        new = []
        with transaction(self._hot):  # durable once sync() returns
            for seq, msg_id, body in pushes:
                cur = self._hot.execute(
                    "INSERT OR IGNORE INTO inbox (id, seq, body, received_at) VALUES (?, ?, ?, ?)",
                    (msg_id, seq, json.dumps(body, ensure_ascii=False), now),
                )
                new.append(cur.rowcount == 1)
            self._hot.execute(
                "UPDATE identity SET acked=MAX(acked, ?) WHERE gateway=? AND appid=?",
                (max(seq for seq, _, _ in pushes), gateway, appid),
            )
        return new

    def mark(self, msg_id: str, state: str) -> None:
        self.mark_many([(msg_id, state)])

    def mark_many(self, states: list[tuple[str, str]], waiting: Collection[str] = ()) -> None:
        """Set inbox states in one commit (one fsync for a whole batch). ``waiting``:
        the ids held only for want of a notification server (flagged in the same
        commit as their held state; every other write clears the flag)."""
        if not states:
            return
        with transaction(self._hot):  # a power cut before sync() replays: shown again
            self._hot.executemany(
                "UPDATE inbox SET state=?, wait_server=? WHERE id=?",
                [(state, int(state == HELD and i in waiting), i) for i, state in states],
            )
        self._done_since_prune += sum(state == DONE for _, state in states)
        if self._done_since_prune >= 1000:
            self.prune()

    def unfinished(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        """Messages in ``state`` (pending or held), in the order they were recorded (the
        rowid's: received_at is the wall clock's, which may have stepped back)."""
        rows = self._db.execute(
            "SELECT id, body FROM inbox WHERE state=? ORDER BY rowid", (state,)
        ).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def waiting_for_server(self) -> set[str]:
        """The held messages that wait only for a notification server."""
        rows = self._db.execute("SELECT id FROM inbox WHERE state=? AND wait_server=1", (HELD,))
        return {row[0] for row in rows.fetchall()}

    def count(self, state: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM inbox WHERE state=?", (state,)).fetchone()
        return int(row[0])

    def prune(self) -> None:
        """Keep the last ``keep_done`` finished ids recorded: enough to drop any
        redelivery. Last by rowid, not received_at: after the wall clock stepped back,
        the ids just recorded (those a lost ack redelivers) would go first."""
        self._done_since_prune = 0
        self._db.execute(
            "DELETE FROM inbox WHERE state='done' AND id NOT IN "
            "(SELECT id FROM inbox WHERE state='done' ORDER BY rowid DESC LIMIT ?)",
            (self.keep_done,),
        )

    # the click that waits for the next subscriber ------------------------------

    def set_pending_click(
        self, appid: str, data: dict[str, Any], click_id: str | None = None
    ) -> None:
        """``click_id``: what it is handed over with, the same in every run."""
        self._db.execute(
            "INSERT INTO pending_click (appid, data, at, click_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (appid) DO UPDATE SET data=excluded.data, at=excluded.at, "
            "click_id=excluded.click_id",
            (appid, json.dumps(data, ensure_ascii=False), time.time(), click_id),
        )

    def pending_click(self, appid: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT data FROM pending_click WHERE appid=?", (appid,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def pending_click_id(self, appid: str) -> str | None:
        row = self._db.execute(
            "SELECT click_id FROM pending_click WHERE appid=?", (appid,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def clear_pending_click(self, appid: str) -> None:
        self._db.execute("DELETE FROM pending_click WHERE appid=?", (appid,))

    # channels: created once, never changed ------------------------------------------

    def add_channel(self, channel_id: str, spec: dict[str, Any]) -> bool:
        """False when the channel exists: uni never changes a channel once created."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO channels (id, spec, created_at) VALUES (?, ?, ?)",
            (channel_id, json.dumps(spec), time.time()),
        )
        return cur.rowcount == 1

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT spec FROM channels WHERE id=?", (channel_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def channels(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT spec FROM channels ORDER BY created_at").fetchall()
        return [json.loads(r[0]) for r in rows]

    # delayed notifications ------------------------------------------------------------

    def schedule(self, sched_id: str, params: dict[str, Any], due_at: float) -> None:
        self._db.execute(
            # A row of the same id is moved (a wall-clock step), in one statement.
            "INSERT OR REPLACE INTO scheduled (id, params, due_at) VALUES (?, ?, ?)",
            (sched_id, json.dumps(params, ensure_ascii=False), due_at),
        )

    def scheduled(self) -> list[tuple[str, dict[str, Any], float]]:
        rows = self._db.execute("SELECT id, params, due_at FROM scheduled ORDER BY due_at")
        return [(r[0], json.loads(r[1]), float(r[2])) for r in rows.fetchall()]

    def unschedule(self, sched_id: str) -> None:
        self._db.execute("DELETE FROM scheduled WHERE id=?", (sched_id,))

    # quiet hours: the toggle and the count held back ---------------------------------

    def quiet(self) -> tuple[bool | None, int]:
        """The toggle (None: follow the schedule) and how many quiet hours held back
        since their last summary: both survive a restart."""
        row = self._db.execute("SELECT override, unread FROM quiet WHERE id=1").fetchone()
        if row is None:
            return None, 0
        return (None if row[0] is None else bool(row[0])), int(row[1])

    def save_quiet(self, override: bool | None, unread: int) -> None:
        self._db.execute(
            "INSERT INTO quiet (id, override, unread) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET override=excluded.override, unread=excluded.unread",
            (None if override is None else int(override), unread),
        )

    # history of what was shown -----------------------------------------------------------

    def remember_shown(
        self,
        entry_id: str,
        source: str,
        channel: str | None,
        title: str,
        content: str,
        data: dict[str, Any],
        keep: int,
        not_shown: str | None = None,
        open_url: str | None = None,
    ) -> None:
        """Record a notification shown now, or (``not_shown``: the reason) one that was
        due now and could not be shown; the same id again (shown later) replaces it.
        Newest is last written (the rowid's order; REPLACE writes a new row), never the
        largest shown_at: the wall clock may have stepped back."""
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO history (id, shown_at, source, channel, title, content, "
                "data, not_shown, open_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry_id,
                    time.time(),
                    source,
                    channel,
                    title,
                    content,
                    json.dumps(data, ensure_ascii=False),
                    not_shown,
                    open_url,
                ),
            )
            self._db.execute(
                "DELETE FROM history WHERE id NOT IN "
                "(SELECT id FROM history ORDER BY rowid DESC LIMIT ?)",
                (keep,),
            )

    def mark_clicked(self, entry_id: str) -> None:
        self._db.execute(
            "UPDATE history SET clicked_at=? WHERE id=? AND clicked_at IS NULL",
            (time.time(), entry_id),
        )

    def history(self, limit: int) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, shown_at, source, channel, title, content, data, clicked_at, not_shown, "
            "open_url FROM history ORDER BY rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = (
            "id",
            "shown_at",
            "source",
            "channel",
            "title",
            "content",
            "data",
            "clicked_at",
            "not_shown",
            "open_url",
        )
        entries = [dict(zip(keys, row, strict=True)) for row in rows]
        for entry in entries:
            entry["data"] = json.loads(entry["data"])
            entry["clicked"] = entry["clicked_at"] is not None
            # not_shown: why it could not be shown (shown_at is then when it was due).
            entry["shown"] = entry["not_shown"] is None
        return entries

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return transaction(self._db)

"""SQLite as both stores use it: a private file, WAL, explicit transactions.

Also what a broken store means to its user (issue 10 items 11 and 21): a damaged,
read-only or unopenable file, a state dir that is not writable, a full disk. Each
becomes one error that names the file and the fix, raised wherever SQLite says so
(at open or on any later statement), instead of a traceback and a restart loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import EXIT_FAIL, StoreDamaged, UnipushError


class StoreBroken(StoreDamaged, sqlite3.DatabaseError):
    """A store file that cannot be used as it is (damaged, read-only, unopenable, or
    in a directory this user cannot write): restarting will not fix it (exit 2)."""


class StoreFull(UnipushError, sqlite3.OperationalError):
    """No space left where the store lives. Freeing space fixes it without any other
    change, so a restart may (exit 1)."""

    exit_code = EXIT_FAIL


def _uid() -> str:
    return f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"


def _unwritable_dir(directory: Path, detail: str) -> StoreBroken:
    return StoreBroken(
        f"state dir {directory} is not writable ({detail}): make it this user's ({_uid()}) "
        "and writable (chown, chmod 700) and restart"
    )


def _full(path: Path, detail: str) -> StoreFull:
    return StoreFull(f"state dir full: {path.parent} ({path.name}: {detail}); free some space")


def store_error(path: Path, exc: BaseException) -> BaseException:
    """The error a user can act on for ``exc`` (raised by SQLite or the file system
    on ``path``), or ``exc`` itself when it is none of those."""
    if isinstance(exc, StoreBroken | StoreFull):
        return exc
    if isinstance(exc, OSError):
        return os_store_error(path.parent, exc, path) or exc
    if not isinstance(exc, sqlite3.Error):
        return exc
    name = getattr(exc, "sqlite_errorname", "")
    directory = path.parent
    if name == "SQLITE_FULL" or "database or disk is full" in str(exc):
        return _full(path, str(exc))
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return StoreBroken(
            f"store {path} is damaged ({exc}): move it aside (mv {path} {path}.damaged) "
            f"and restart; a new, empty one is made, the rest of {directory} is kept"
        )
    if name.startswith("SQLITE_READONLY"):
        if not os.access(directory, os.W_OK):
            return _unwritable_dir(directory, str(exc))
        return StoreBroken(
            f"store {path} is read-only ({exc}): make it writable for this user "
            f"({_uid()}: chown, chmod 600, chattr -i) and restart"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        if path.is_dir():
            return StoreBroken(
                f"store {path} is a directory, not a database: move it aside and restart"
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            return _unwritable_dir(directory, str(exc))
        return StoreBroken(
            f"store {path} cannot be opened ({exc}): make it and {directory} readable and "
            f"writable for this user ({_uid()}) and restart"
        )
    return exc


def os_store_error(
    state_dir: Path, exc: OSError, path: Path | None = None
) -> StoreBroken | StoreFull | None:
    """A file-system error in the state dir as the user can act on it, or None."""
    where = Path(exc.filename) if isinstance(exc.filename, str) else (path or state_dir)
    if exc.errno == errno.ENOSPC:
        return _full(where if where != state_dir else state_dir / "-", exc.strerror or "full")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        if where.is_relative_to(state_dir) and where != state_dir and where.exists():
            return StoreBroken(
                f"{where} cannot be written ({exc.strerror}): make it this user's "
                f"({_uid()}) and writable (chown, chmod 600, chattr -i) and restart"
            )
        return _unwritable_dir(state_dir, exc.strerror or str(exc))
    return None


class _Connection(sqlite3.Connection):
    """A connection whose statements raise :func:`store_error`'s errors; they keep
    sqlite3's classes as bases, so existing ``except sqlite3...`` still applies."""

    store_path: Path = Path()
    #: Called after each COMMIT made by transaction() or GroupCommit (the Checkpointer's
    #: wake-up): set once, before any commit, so no lock guards it.
    on_commit: Callable[[], None] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise store_error(self.store_path, exc) from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise store_error(self.store_path, exc) from exc

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise store_error(self.store_path, exc) from exc


def open_db(path: Path, synchronous: str, cache_mb: int = 2) -> sqlite3.Connection:
    """Open (creating) a database only this user can read; autocommit unless a
    transaction() is open. ``synchronous``: FULL survives power loss, NORMAL a crash.
    ``cache_mb``: SQLite's page cache (2 MB is its default).
    Raises :class:`StoreBroken` or :class:`StoreFull` naming the file and the fix."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=_Connection
        )
    except (OSError, sqlite3.Error) as exc:
        raise store_error(path, exc) from exc
    assert isinstance(db, _Connection)
    db.store_path = path
    try:
        os.chmod(path, 0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
        # The checkpointer's connection may hold a lock for a moment: wait, do not fail.
        db.execute("PRAGMA busy_timeout=10000")
        # Read the schema and take the write lock once: a damaged or read-only file
        # fails here, at start, not on the first push.
        db.execute("SELECT count(*) FROM sqlite_master").fetchall()
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except BaseException as exc:
        db.close()
        raise store_error(path, exc) from exc
    return db


#: The WAL's size past which the checkpointer makes it start over (and what the file
#: is cut back to then). Under a sustained stream of commits a PASSIVE checkpoint
#: never catches up with the last one, so SQLite never resets the WAL: a gateway
#: flooded with sendMessage grew it by 45 MB a second, for as long as the flood lasted.
WAL_LIMIT_BYTES = 64 * 1024 * 1024


class Checkpointer:
    """WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside
    whichever COMMIT takes the WAL past 1000 pages and fsyncs the WAL and the database
    there: 2 to 20 ms on the loop every few hundred messages, the whole p99 of a push.
    So it is off for ``db`` (and ``writers``, other connections to the same file), and
    a thread with a connection of its own checkpoints (PASSIVE: it never blocks the
    writer) at most every ``every_s`` seconds while they commit. A WAL past
    ``wal_limit`` bytes is made to start over (see WAL_LIMIT_BYTES).

    An idle desktop daemon must not wake the CPU for nothing (a laptop on battery): a
    commit wakes the thread, and without one it checkpoints again after twice as long
    each time it found nothing new, up to ``idle_s`` (what a plain autocommit statement
    wrote, which does not wake it, waits that long at most)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        every_s: float = 0.5,
        *,
        writers: Iterable[sqlite3.Connection] = (),
        idle_s: float = 60.0,
        wal_limit: int = WAL_LIMIT_BYTES,
    ) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._wal_limit = wal_limit
        self._every = every_s
        self._idle = max(idle_s, every_s)
        self._stop = threading.Event()
        self._poke = threading.Event()
        self.checkpoints = 0  # for tests: how often it ran
        #: Set by the thread when the WAL is past wal_limit; the next commit acts on it.
        self.restart_due = False
        for conn in (db, *writers):
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={int(wal_limit)}")
            if isinstance(conn, _Connection):
                conn.on_commit = functools.partial(self._committed, conn)
        self._thread = threading.Thread(target=self._run, daemon=True, name="sqlite-checkpoint")
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        wait, last = self._every, None
        try:
            while True:
                poked = self._poke.wait(wait)
                if self._stop.is_set():
                    return
                if poked:
                    self._poke.clear()
                    # The commits of the next every_s share this checkpoint.
                    if self._stop.wait(self._every):
                        return
                state = None
                with contextlib.suppress(sqlite3.OperationalError):  # busy: next round
                    state = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                # PASSIVE copied the bulk without blocking anyone; the tail is for the
                # writer's next commit (a RESTART from here starved: the writer took
                # the lock back every loop turn while this one slept in SQLite's busy
                # handler, and the WAL grew on for seconds).
                self.restart_due = self._too_long()
                self.checkpoints += 1
                new = poked or state is None or state != last
                wait = self._every if new else min(wait * 2, self._idle)
                last = state
        finally:
            db.close()

    def _committed(self, conn: sqlite3.Connection) -> None:
        """After a commit on ``conn``, on the writer's thread: wake the checkpointer,
        and start the WAL over if it is past the limit. RESTART copies what the last
        PASSIVE left (a fraction of a second of commits) and fsyncs: a few ms on the
        writer, once per wal_limit bytes, for a WAL that stays bounded."""
        self._poke.set()
        if self.restart_due:
            self.restart_due = False
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def _too_long(self) -> bool:
        try:
            return self._wal.stat().st_size > self._wal_limit
        except OSError:
            return False

    def close(self) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(5)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One commit for everything inside; any exception rolls it all back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # SQLite has already rolled back after some errors (SQLITE_FULL among them):
        # a second ROLLBACK would fail and hide the error that matters.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    else:
        db.execute("COMMIT")
        _committed(db)


def _committed(db: sqlite3.Connection) -> None:
    hook = getattr(db, "on_commit", None)
    if hook is not None:
        hook()


class GroupCommit:
    """Units of work from concurrent requests, committed by one COMMIT (issue 17 item 5).

    A unit is a SAVEPOINT inside one open transaction: it is atomic on its own (an
    exception rolls back that unit alone), and everything the units of one event-loop
    turn wrote is committed together by a callback scheduled after them, so sixteen
    requests that arrive together write their shared pages (an index, the clients
    table, the WAL header) once, not sixteen times. Reads on this connection see the
    open transaction, so every caller sees what the others wrote before it is
    committed; what is not committed yet is never *answered* as done: callers await
    :meth:`synced` before they answer. Without a running loop (start-up, tools) a unit
    commits as it ends, as a plain transaction would."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._depth = 0
        #: Resolved by the commit that covers every unit ended so far.
        self._commit: asyncio.Future[None] | None = None
        #: The scheduled flush: cancelled by an earlier one (close() commits what is
        #: left, and the callback must not run on the closed connection after it).
        self._pending: asyncio.Handle | None = None
        #: Called first by every flush (the gateway writes a turn's push frames there,
        #: so they leave before its commit); set once, before any unit.
        self.before_commit: Callable[[], None] | None = None

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        db = self._db
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        db.execute("SAVEPOINT unit")
        try:
            yield
        except BaseException as exc:
            # SQLite has already rolled back the whole transaction after some errors
            # (SQLITE_FULL among them): then there is no savepoint left to go back to.
            if db.in_transaction:
                db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
            self._depth -= 1
            if not db.in_transaction:
                self._failed(exc)
            elif self._depth == 0:
                self._schedule()  # the others' units, or an empty BEGIN, end too
            raise
        else:
            db.execute("RELEASE unit")
            self._depth -= 1
        if self._depth == 0:
            self._schedule()

    def _schedule(self) -> None:
        if self._commit is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: a plain transaction
            self.flush()
            return
        self._commit = loop.create_future()
        self._pending = loop.call_soon(self.flush)

    async def synced(self) -> None:
        """Returns once everything written so far is committed; raises what the commit
        raised (a full disk) if it failed, and then none of it is."""
        if self._commit is not None:
            await asyncio.shield(self._commit)

    def flush(self) -> None:
        """Commit now; the scheduled callback, and close() for what is left."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self.before_commit is not None:
            self.before_commit()
        commit, self._commit = self._commit, None
        if self._depth or not self._db.in_transaction:
            _settle(commit, None)
            return
        try:
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if commit is None:
                raise
            _settle(commit, exc)
            return
        _committed(self._db)
        _settle(commit, None)

    def _failed(self, exc: BaseException) -> None:
        """SQLite rolled the whole transaction back under the units: the others' writes
        of this turn are gone too, and their callers must not answer them as done."""
        commit, self._commit = self._commit, None
        _settle(commit, exc)


def _settle(commit: asyncio.Future[None] | None, exc: BaseException | None) -> None:
    """Tell a turn's callers how its commit went."""
    if commit is None or commit.done():
        return
    if exc is None:
        commit.set_result(None)
    else:
        commit.set_exception(exc)
        commit.exception()  # retrieved: each caller re-raises it from synced()

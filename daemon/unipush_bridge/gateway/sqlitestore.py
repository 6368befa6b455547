"""The SQLite file (store.py) behind the awaited Store protocol (storeapi.py).

store.py's calls are synchronous and stay so (tools and tests use them as they are);
here each is awaited and never suspends, so a transaction's units are never
interleaved with another request's: GroupCommit's savepoints nest as a stack only if
nothing inside a unit gives the loop away, and :meth:`SqliteStore.transaction` checks
that it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .store import ClientRecord, GatewayStore

if TYPE_CHECKING:  # storeapi imports this module
    from .storeapi import Refuse


class SuspendedInTransaction(RuntimeError):
    """Something awaited inside a SQLite transaction gave the loop to another request:
    their savepoints would have crossed (a bug in the caller, never the user's)."""


class _Transaction:
    """SqliteStore.transaction(): one GroupCommit unit, refused if another request's
    is open (it suspended). A class, not an asynccontextmanager: every sendMessage
    enters one, and the generator machinery cost more than the checks."""

    __slots__ = ("_store", "_unit")

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._unit: contextlib.AbstractContextManager[None] | None = None

    async def __aenter__(self) -> None:
        store = self._store
        task = asyncio.current_task()
        if store._open and store._owner is not task:
            raise SuspendedInTransaction(
                "a SQLite transaction began while another request's was suspended"
            )
        unit = store.sync.transaction()
        unit.__enter__()
        self._unit = unit
        store._owner = task
        store._open += 1

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool | None:
        assert self._unit is not None
        try:
            return self._unit.__exit__(kind, exc, tb)
        finally:
            self._store._open -= 1


class SqliteStore:
    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        #: The synchronous store, for what is SQLite's alone (migrations, tools).
        self.sync = GatewayStore(path, clock)
        self._clock = clock
        self._open = 0  # transactions entered and not left (nested in one task)
        self._owner: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        self.sync.close()

    def now(self) -> float:
        """One node, one clock: the gateway's."""
        return self._clock()

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return _Transaction(self)

    async def synced(self) -> None:
        await self.sync.synced()

    def before_commit(self, hook: Callable[[], None]) -> None:
        self.sync.before_commit(hook)

    def committed(self, seq: int) -> tuple[int, int]:
        """The row id is the seq, and commits reach the connections in order."""
        return seq, 0

    # registrations and cursors

    async def known(self, appid: str, cid: str) -> bool:
        return self.sync.known(appid, cid)

    async def known_many(self, appid: str, cids: list[str]) -> set[str]:
        return self.sync.known_many(appid, cids)

    async def client(self, appid: str, cid: str) -> ClientRecord | None:
        return self.sync.client(appid, cid)

    async def register(
        self, appid: str, cid: str, acked: int, secret_hash: str | None = None
    ) -> int:
        return self.sync.register(appid, cid, acked, secret_hash)

    async def touch(self, appid: str, cid: str) -> None:
        self.sync.touch(appid, cid)

    async def all_cids(self, appid: str) -> list[str]:
        return self.sync.all_cids(appid)

    async def clients(self, appid: str, cids: list[str]) -> dict[str, tuple[float, float]]:
        return self.sync.clients(appid, cids)

    # undelivered messages

    async def add_message(
        self,
        appid: str,
        cid: str,
        msg_id: str,
        taskid: str,
        body: dict[str, Any] | str,
        ttl_s: float,
    ) -> int:
        return self.sync.add_message(appid, cid, msg_id, taskid, body, ttl_s)

    async def after(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        return self.sync.after(appid, cid, seq, limit)

    async def after_raw(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, str]]:
        return self.sync.after_raw(appid, cid, seq, limit)

    async def ack(self, appid: str, cid: str, seq: int) -> None:
        self.sync.ack(appid, cid, seq)

    async def ack_many(self, acks: Iterable[tuple[str, str, int]]) -> None:
        self.sync.ack_many(acks)

    async def purge_expired(self) -> int:
        return self.sync.purge_expired()

    async def purge_unseen(self, max_age_s: float, keep: Iterable[tuple[str, str]] = ()) -> int:
        return self.sync.purge_unseen(max_age_s, keep)

    async def pending_count(self, appid: str, cid: str) -> int:
        return self.sync.pending_count(appid, cid)

    # request_id answers

    async def answer_for(self, appid: str, request_id: str) -> dict[str, Any] | None:
        return self.sync.answer_for(appid, request_id)

    async def remember_answer(self, appid: str, request_id: str, answer: dict[str, Any]) -> None:
        self.sync.remember_answer(appid, request_id, answer)

    async def claim_answer(self, appid: str, request_id: str) -> bool:
        """Nothing suspends from answer_for to the commit: no other call is between."""
        return True

    async def release_answer(self, appid: str, request_id: str) -> None:
        """Nothing was claimed."""

    # aliases, tags, uni-id mappings

    async def alias_of(self, appid: str, cid: str) -> str | None:
        return self.sync.alias_of(appid, cid)

    async def cids_of_alias(self, appid: str, alias: str) -> list[str]:
        return self.sync.cids_of_alias(appid, alias)

    async def bind_alias(self, appid: str, cid: str, alias: str) -> None:
        self.sync.bind_alias(appid, cid, alias)

    async def bind_aliases(
        self, appid: str, pairs: list[tuple[str, str]], cap: int, refuse: Refuse
    ) -> None:
        """The cap is the caller's check, read in this transaction (which never
        suspends, so nothing is committed between its reads and these writes)."""
        for cid, alias in pairs:
            self.sync.bind_alias(appid, cid, alias)

    async def unbind_alias(self, appid: str, cid: str, alias: str) -> None:
        self.sync.unbind_alias(appid, cid, alias)

    async def unbind_all_alias(self, appid: str, alias: str) -> None:
        self.sync.unbind_all_alias(appid, alias)

    async def tags_of(self, appid: str, cid: str) -> list[str]:
        return self.sync.tags_of(appid, cid)

    async def set_tags(self, appid: str, cid: str, tags: list[str]) -> None:
        self.sync.set_tags(appid, cid, tags)

    async def add_tag(self, appid: str, cid: str, tag: str) -> None:
        self.sync.add_tag(appid, cid, tag)

    async def add_tag_to(
        self, appid: str, cids: list[str], tag: str, cap: int, refuse: Refuse
    ) -> None:
        """As bind_aliases: the cap is the caller's check in this transaction."""
        for cid in cids:
            self.sync.add_tag(appid, cid, tag)

    async def remove_tag(self, appid: str, cid: str, tag: str) -> None:
        self.sync.remove_tag(appid, cid, tag)

    async def cids_with_tag(self, appid: str, tag: str) -> list[str]:
        return self.sync.cids_with_tag(appid, tag)

    async def bind_uniid(
        self, appid: str, cid: str, user_id: str | None, device_id: str | None
    ) -> None:
        self.sync.bind_uniid(appid, cid, user_id, device_id)

    async def set_user_tags(self, appid: str, user_id: str, tags: list[str]) -> None:
        self.sync.set_user_tags(appid, user_id, tags)

    async def has_uniid(self, appid: str) -> bool:
        return self.sync.has_uniid(appid)

    async def cids_for_users(self, appid: str, user_ids: list[str]) -> list[str]:
        return self.sync.cids_for_users(appid, user_ids)

    async def cids_for_devices(self, appid: str, device_ids: list[str]) -> list[str]:
        return self.sync.cids_for_devices(appid, device_ids)

    async def cids_for_user_tags(self, appid: str, tags: list[str]) -> list[str]:
        return self.sync.cids_for_user_tags(appid, tags)

    # task reports

    async def add_task(
        self, appid: str, taskid: str, group_name: str | None, target_num: int, msg_num: int
    ) -> None:
        self.sync.add_task(appid, taskid, group_name, target_num, msg_num)

    async def count_receipt(
        self, appid: str, cid: str, msg_id: str, taskid: str, event: str
    ) -> bool:
        return self.sync.count_receipt(appid, cid, msg_id, taskid, event)

    async def report(self, appid: str, where: str, args: tuple[Any, ...]) -> dict[str, int] | None:
        return self.sync.report(appid, where, args)

    async def tasks_made(self, appid: str, start: float, end: float) -> tuple[int, int]:
        return self.sync.tasks_made(appid, start, end)

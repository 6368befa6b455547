"""What the gateway asks of its store, as one Protocol: the SQLite store (sqlitestore.py
over store.py) and the Redis store (redisstore.py) both keep to it, and server, service
and methods are written against it, so a store is chosen by ``store = ...`` in
gateway.toml alone.

The calls are awaited: on Redis each is a round trip on redis-py's asyncio client, so a
Redis that stalls stalls only the requests that wait for it (the node's other daemons
keep their links, /healthz answers), and sixteen requests' round trips overlap instead
of queueing on the loop. On SQLite the calls never suspend (a local file answers in
microseconds): everything inside ``transaction()`` runs without a break, and the
commit is shared by a loop turn's requests (GroupCommit). On Redis a transaction's
writes are queued and sent as one MULTI at its end, and the reads before them see
what is committed, as they do with several nodes on one Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..errors import ConfigError
from .access import GatewayConfig
from .sqlitestore import SqliteStore
from .store import ClientRecord

__all__ = ["ClientRecord", "Store", "open_store"]


#: What a capped write raises when a pair would pass its cap: called with the alias
#: (or cid) refused and how many cids (or tags) it has, it makes the caller's error.
Refuse = Callable[[str, int], Exception]


class ClaimLost(Exception):
    """A request_id's claim lapsed under its call (the node lost its store for longer
    than the claim lives) and another call took it: this call's commit stored nothing,
    and the other call's answer is the request_id's (service.send_message reads it)."""


class CidTaken(Exception):
    """A hello's cid was bound to another secret by a hello on another node after the
    service checked it (Redis: the two awaited between their read and their commit):
    nothing was registered, and the hello is refused as cid_taken."""


class Store(Protocol):
    async def close(self) -> None: ...

    def now(self) -> float:
        """The clock messages' times are on (their expiry, ``hold_until``, the welcome's
        ``now`` a daemon measures itself against): one for every node of a cluster."""
        ...

    # registrations and cursors
    async def known(self, appid: str, cid: str) -> bool: ...
    async def known_many(self, appid: str, cids: list[str]) -> set[str]: ...
    async def client(self, appid: str, cid: str) -> ClientRecord | None: ...
    async def register(
        self, appid: str, cid: str, acked: int, secret_hash: str | None = None
    ) -> int:
        """The cursor to resume from; raises CidTaken where another call may bind the
        cid between the caller's check of ``secret_hash`` and this one (Redis)."""
        ...

    async def touch(self, appid: str, cid: str) -> None: ...
    async def all_cids(self, appid: str) -> list[str]: ...
    async def clients(self, appid: str, cids: list[str]) -> dict[str, tuple[float, float]]: ...

    # undelivered messages
    async def add_message(
        self,
        appid: str,
        cid: str,
        msg_id: str,
        taskid: str,
        body: dict[str, Any] | str,
        ttl_s: float,
    ) -> int: ...
    def committed(self, seq: int) -> tuple[int, int]:
        """(seq, the cid's seq before it) for add_message's answer, once its transaction
        committed. "Before" is 0 where commits reach the connections in seq order
        (SQLite); on Redis two requests' EXECs may answer out of order, and a message
        whose predecessor is not sent yet must be read from the store, not skipped."""
        ...

    async def after(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]: ...
    async def after_raw(
        self, appid: str, cid: str, seq: int, limit: int = 500
    ) -> list[tuple[int, str, str]]: ...
    async def ack(self, appid: str, cid: str, seq: int) -> None: ...
    async def ack_many(self, acks: Iterable[tuple[str, str, int]]) -> None: ...
    async def purge_expired(self) -> int: ...
    async def purge_unseen(self, max_age_s: float, keep: Iterable[tuple[str, str]] = ()) -> int: ...
    async def pending_count(self, appid: str, cid: str) -> int: ...

    # request_id answers
    async def answer_for(self, appid: str, request_id: str) -> dict[str, Any] | None: ...
    async def remember_answer(
        self, appid: str, request_id: str, answer: dict[str, Any]
    ) -> None: ...
    async def claim_answer(self, appid: str, request_id: str) -> bool:
        """True: this call makes the request_id's answer (remember_answer, or
        release_answer when it fails); False: another call is making it now. On Redis
        two calls (or nodes) await between reading "no answer" and committing one; a
        SQLite transaction never suspends, so its call is always the only one."""
        ...

    async def release_answer(self, appid: str, request_id: str) -> None:
        """A claimed call failed: the request_id is free for the next call. A claimed
        call whose claim was taken from it meanwhile (ClaimLost) stores nothing at its
        commit, which raises ClaimLost."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One atomic step for all the writes inside; an exception discards them all."""
        ...

    async def synced(self) -> None:
        """Returns once every write so far is committed (raises if that failed): what
        is answered as done must be. SQLite commits a loop turn's writes together."""
        ...

    def before_commit(self, hook: Callable[[], None]) -> None:
        """``hook`` runs before each commit of a loop turn's writes, where a store
        commits them together (SQLite); elsewhere never."""
        ...

    # aliases, tags, uni-id mappings
    async def alias_of(self, appid: str, cid: str) -> str | None: ...
    async def cids_of_alias(self, appid: str, alias: str) -> list[str]: ...
    async def bind_alias(self, appid: str, cid: str, alias: str) -> None: ...
    async def bind_aliases(
        self, appid: str, pairs: list[tuple[str, str]], cap: int, refuse: Refuse
    ) -> None:
        """Each (cid, alias) bound, rebinding a cid moves it, as one step: if a pair
        would give its alias more than ``cap`` cids (counting the list's own earlier
        pairs), none is bound and ``refuse(alias, its cids)`` is raised (on Redis at the
        commit). On SQLite the caller's reads in the same transaction are the check; on
        Redis the check is the commit's own, so it holds across nodes."""
        ...

    async def unbind_alias(self, appid: str, cid: str, alias: str) -> None: ...
    async def unbind_all_alias(self, appid: str, alias: str) -> None: ...
    async def tags_of(self, appid: str, cid: str) -> list[str]: ...
    async def set_tags(self, appid: str, cid: str, tags: list[str]) -> None: ...
    async def add_tag(self, appid: str, cid: str, tag: str) -> None: ...
    async def add_tag_to(
        self, appid: str, cids: list[str], tag: str, cap: int, refuse: Refuse
    ) -> None:
        """``tag`` added to every cid, or to none if one would have more than ``cap``
        tags: ``refuse(cid, its tags)`` is raised then (as bind_aliases)."""
        ...

    async def remove_tag(self, appid: str, cid: str, tag: str) -> None: ...
    async def cids_with_tag(self, appid: str, tag: str) -> list[str]: ...
    async def bind_uniid(
        self, appid: str, cid: str, user_id: str | None, device_id: str | None
    ) -> None: ...
    async def set_user_tags(self, appid: str, user_id: str, tags: list[str]) -> None: ...
    async def has_uniid(self, appid: str) -> bool: ...
    async def cids_for_users(self, appid: str, user_ids: list[str]) -> list[str]: ...
    async def cids_for_devices(self, appid: str, device_ids: list[str]) -> list[str]: ...
    async def cids_for_user_tags(self, appid: str, tags: list[str]) -> list[str]: ...

    # task reports
    async def add_task(
        self, appid: str, taskid: str, group_name: str | None, target_num: int, msg_num: int
    ) -> None: ...
    async def count_receipt(
        self, appid: str, cid: str, msg_id: str, taskid: str, event: str
    ) -> bool: ...
    async def report(self, appid: str, where: str, args: tuple[Any, ...]) -> dict[str, int] | None:
        """``where`` is one of methods.py's three filters: "taskid=?", "group_name=?",
        store.DAY (the Redis store knows no others)."""
        ...

    async def tasks_made(self, appid: str, start: float, end: float) -> tuple[int, int]:
        """(broadcasts, other pushes) the app made from ``start`` to before ``end``."""
        ...


def open_store(
    config: GatewayConfig,
    clock: Callable[[], float],
    monotonic: Callable[[], float] | None = None,
) -> Store:
    """The store ``config.store`` names: the SQLite file in data_dir, or Redis (whose
    message expiries run on Redis' clock, carried on by ``monotonic``)."""
    if not config.store:
        return SqliteStore(config.data_dir / "gateway.sqlite3", clock)
    try:
        from .redisstore import RedisStore
    except ImportError as exc:  # the optional extra is not installed
        raise ConfigError(
            f"store: {config.store!r} needs redis-py: pip install 'unipush-bridge[redis]'"
        ) from exc
    try:
        store = RedisStore(config.store, clock, monotonic=monotonic)
    except Exception as exc:  # redis.RedisError, a bad URL: say which setting
        raise ConfigError(f"store: cannot reach Redis at {config.store!r}: {exc}") from exc
    return store

"""Several gateway nodes, one service (issue 17 item 2): the nodes share a Redis store,
and this listener carries what one node commits to the daemons held by the others.

The Redis store publishes inside the very MULTI that commits: ``took`` for each
registration on ``{prefix}cluster``, which every node hears, and ``pushes`` for each
call that stores messages: the appid, the body when it is short, and per message its
cid, seq and the cid's seq before it. That notice goes on ``{prefix}cluster:{node}``
of each node whose presence holds some of the cids (on ``{prefix}cluster`` for cids no
presence holds; to none for the committing node's own), so a broadcast to 20,000 is
one notice per node, not 20,000 for every node to parse. A node that holds the cid's
websocket hands the message over when it has sent the one before, and otherwise (or
with no body) wakes its sender, which reads the store after its cursor: so a notice
lost or repeated changes nothing but latency. It closes its connection on ``took``
from another node when that registration is newer than its own (each registration of
a cid is numbered in Redis, so when two nodes register one cid at once both agree
which is newest, as on one node). Pub/sub loses notices while a node is away; a
daemon that reconnects resumes from its cursor in the store, so nothing is lost with
them.

Presence: the registration also sets ``on:{appid}:{cid}`` to this node's id; the
link drops it when the connection closes, and keeps ``node:{id}`` alive with a short
ttl (a cid is online while its presence names a live node), so any node answers a
push to a cid held elsewhere as one node does (successed_online, and an online-only
message is stored, not ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:  # redis-py is an optional extra: imported when a link starts
    from .redisstore import RedisStore
    from .server import Gateway

log = structlog.get_logger(__name__)

#: A subscriber that heard nothing this long, not even this node's own beat (published
#: with each liveness SET, every 5 s), is taken as dead: a link a NAT or a proxy dropped
#: without a FIN never ends on its own, and the notices it would carry were lost until
#: a daemon happened to reconnect. It is opened again, and the store read (a resync).
SILENT_S = 15.0


class _SilentLink(Exception):
    """The subscriber heard nothing for SILENT_S."""


class ClusterLink:
    def __init__(self, gateway: Gateway, url: str, prefix: str = "up:") -> None:
        self.gateway = gateway
        self.url = url
        self.channel = prefix + "cluster"
        self.node = secrets.token_hex(8)
        self.store: RedisStore = gateway.store  # type: ignore[assignment]
        self._task: asyncio.Task[None] | None = None
        self._renew: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()
        #: The newest registration number heard from other nodes, per cid: one heard
        #: while this node's own registration of that cid awaited its EXEC could not
        #: be compared yet (superseded() does it once the EXEC has answered).
        self._heard: dict[tuple[str, str], int] = {}

    async def start(self) -> None:
        self.store.node = self.node
        self.store.on_touch = self._touched
        self.store.on_added = self._added
        self.store.on_lost = self._lost
        with contextlib.suppress(Exception):  # Redis away: the renewal loop tries again
            await self.store.heartbeat()  # before any registration here claims a cid
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._listen())
        self._renew = loop.create_task(self._renew_presence())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        for task in (self._task, self._renew, *self._pending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # Redis away: the key's ttl ends it
            await self.store.flatline()

    async def online(self, appid: str, cids: list[str]) -> set[str]:
        """Which of these cids another node holds (this node's are checked first)."""
        return await self.store.present_many(appid, cids)

    def _added(self, appid: str, cid: str, seq: int, before: int) -> None:
        """This node committed ``seq``; the cid's message before it may be another
        node's that this one has not read yet: then the connection reads the store
        before handing anything over directly, so that one is not skipped."""
        conn = self.gateway.connections.get((appid, cid))
        if conn is not None and before > conn.last_sent:
            conn.resync()

    def _lost(self) -> None:
        """Redis lost its data (FLUSHALL, a restart without persistence) while these
        connections stayed up: their registrations went with it, and every push to
        them was answered "target user is invalid" until the daemon happened to
        reconnect. Each is closed, as when the store fails, and registers again."""
        log.warning(
            "the store lost its data; the daemons here register again",
            connections=len(self.gateway.connections),
        )
        for appid, cid in list(self.gateway.connections):
            self.gateway.store_failed(appid, cid)

    def _touched(self, appid: str, cid: str) -> None:
        """A connection closed: once the server has let go of it (later in this loop
        turn), the cid's presence goes unless a newer connection here holds it."""
        self._spawn(self._left(appid, cid))

    async def _left(self, appid: str, cid: str) -> None:
        await asyncio.sleep(0)
        key = (appid, cid)
        if key in self.gateway.connections:
            return
        with contextlib.suppress(Exception):  # Redis away: the ttl ends it
            await self.store.leave(appid, cid)
            if key in self.gateway.connections:
                # It said hello here again while the delete was on its way, and the
                # delete may have landed after that registration's claim: claim again.
                await self.store.renew_presence([key])

    async def _renew_presence(self) -> None:
        """Every third of PRESENCE_TTL_S this node is alive again (one SET), and every
        third of HOLD_TTL_S its cids' presence keys are renewed too."""
        from .redisstore import HOLD_TTL_S, PRESENCE_TTL_S

        beat = PRESENCE_TTL_S / 3
        every = max(1, round(HOLD_TTL_S / 3 / beat))
        for n in itertools.count(1):
            await asyncio.sleep(beat)
            held = list(self.gateway.connections)
            for key in set(self.store.regs) - set(held):
                self.store.regs.pop(key, None)
            for key in set(self._heard) - set(held):
                self._heard.pop(key, None)
            try:
                if n % every:
                    await self.store.heartbeat()
                else:
                    await self.store.renew_presence(held)
            except Exception as exc:  # Redis restarting: the next round renews
                log.warning("presence renewal failed", error=str(exc))

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        lost = False
        while True:
            client: Any = aioredis.Redis.from_url(self.url, decode_responses=True)
            try:
                async with client.pubsub() as pubsub:
                    # the cluster's notices, and the pushes to the cids held here
                    await pubsub.subscribe(self.channel, f"{self.channel}:{self.node}")
                    self._ready.set()
                    if lost:  # what was committed while we heard nothing: read it now
                        lost = False
                        log.info("cluster link back")
                        self._resync()
                    loop = asyncio.get_running_loop()
                    heard = loop.time()
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            if loop.time() - heard > SILENT_S:
                                raise _SilentLink(f"nothing heard for {SILENT_S:g} s")
                            continue
                        heard = loop.time()
                        if message.get("type") == "message":
                            await self._on(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: resubscribe, then resync
                if not lost:
                    log.warning("cluster link lost; resubscribing", error=str(exc))
                lost = True
                self._ready.set()
                await asyncio.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _resync(self) -> None:
        """Once subscribed again (not before: a notice between the read and the
        subscription would be lost), every connection reads the store after its
        cursor, and this node's presence is renewed (a Redis without its data)."""
        for conn in list(self.gateway.connections.values()):
            conn.kick()
        held = list(self.gateway.connections)
        self._spawn(self.store.renew_presence(held))

    async def _on(self, note: dict[str, Any]) -> None:
        if note.get("node") == self.node:
            return  # this node's own beat among them: it only said the link is alive
        if note["kind"] == "pushes":
            self._pushes(note["appid"], note["items"], note.get("body"))
            return
        if note["kind"] == "push":  # one per message, from a node of an older version
            items = [[note["cid"], note["seq"], note["id"], note["before"]]]
            self._pushes(note["appid"], items, note.get("body"))
            return
        if note["kind"] != "took":
            return
        key = (note["appid"], note["cid"])
        reg = int(note.get("reg", 0))
        self._heard[key] = max(reg, self._heard.get(key, 0))  # even with no connection yet
        conn = self.gateway.connections.get(key)
        if conn is not None and reg > self.store.regs.get(key, 0):
            # a newer registration than the one held here (an older one: it stays)
            self.gateway.connections.pop(key, None)
            # Not awaited here: a close waits for the welcome and the handshake, and
            # the notices behind this one (other daemons' pushes) must not wait too.
            self._spawn(conn.replaced())

    def _pushes(self, appid: str, items: list[list[Any]], body: str | None) -> None:
        """One committed call's messages for the cids held here: [cid, seq, id, the
        cid's seq before] each, and the body they share when it is short."""
        if items:  # committed: a seq counter below these is Redis gone back (_beat)
            self.store.saw_seq(max(int(item[1]) for item in items))
        if body is None:  # a long body: each reads it from the store
            self.gateway.kick(appid, (cid for cid, *_ in items))
            return
        self._spawn(self._hand_over(appid, items, body))

    async def _hand_over(self, appid: str, items: list[list[Any]], body: str) -> None:
        """Handed over as the committing node hands over its own (Gateway.hand_over),
        in one task for the notice: a sender task woken per daemon cost a broadcast's
        other node more than its writes. Beside the notice loop, so a daemon that
        stopped reading holds up neither it nor the next notice."""
        pushes = ((cid, int(before), int(seq), msg_id, body) for cid, seq, msg_id, before in items)
        await self.gateway.hand_over(appid, pushes)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Work the link does not wait for, kept until done (and cancelled at stop)."""
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def superseded(self, appid: str, cid: str) -> bool:
        """Another node registered the cid after this node's registration did."""
        key = (appid, cid)
        return self._heard.get(key, 0) > self.store.regs.get(key, 0)


async def start_cluster(gateway: Gateway) -> ClusterLink | None:
    """The link for a gateway on a Redis store; None on SQLite (one node)."""
    if not gateway.config.store:
        return None
    link = ClusterLink(gateway, gateway.config.store)
    await link.start()
    return link

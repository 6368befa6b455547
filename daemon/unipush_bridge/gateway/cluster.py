"""Several gateway nodes, one service (issue 17 item 2): the nodes share a Redis store,
and this listener carries what one node commits to the daemons held by the others.

The Redis store publishes on ``{prefix}cluster`` inside the very MULTI that commits:
``push`` for each message stored (appid, cid, seq) and ``took`` for each registration.
A node that holds the cid's websocket wakes its sender on ``push`` (which reads the
store after its cursor, so a notice lost or repeated changes nothing but latency), and
closes its connection on ``took`` from another node (the newest connection wins, as
on one node). Pub/sub loses notices while a node is away; a daemon that reconnects
resumes from its cursor in the store, so nothing is lost with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

import structlog

from ..wire import gateway as protocol

if TYPE_CHECKING:
    from .server import Gateway

log = structlog.get_logger(__name__)


class ClusterLink:
    def __init__(self, gateway: Gateway, url: str, prefix: str = "up:") -> None:
        self.gateway = gateway
        self.url = url
        self.channel = prefix + "cluster"
        self.node = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                client: Any = aioredis.Redis.from_url(self.url, decode_responses=True)
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._on(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: kick everyone once back
                log.warning("cluster link lost; resubscribing", error=str(exc))
                self._ready.set()
                await asyncio.sleep(0.2)
                for conn in list(self.gateway.connections.values()):
                    conn.kick()

    async def _on(self, note: dict[str, Any]) -> None:
        if note.get("node") == self.node:
            return
        conn = self.gateway.connections.get((note["appid"], note["cid"]))
        if conn is None:
            return
        if note["kind"] == "push":
            conn.kick()
        elif note["kind"] == "took":
            self.gateway.connections.pop((note["appid"], note["cid"]), None)
            await conn.close(protocol.CloseCode.REPLACED, "replaced by a newer connection")


async def start_cluster(gateway: Gateway) -> ClusterLink | None:
    """The link for a gateway on a Redis store; None on SQLite (one node)."""
    if not gateway.config.store:
        return None
    link = ClusterLink(gateway, gateway.config.store)
    store: Any = gateway.store
    store.node = link.node
    await link.start()
    return link

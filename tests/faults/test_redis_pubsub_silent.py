"""The cluster link's subscriber connection dies without a FIN (a NAT or a proxy
dropped it): nothing ever ends it, and the notices it should carry were lost until a
daemon happened to reconnect: a push accepted by node A reached a daemon on node B
only then. The node hears its own beat on its subscriber every 5 s; silent for
SILENT_S, the link is opened again and the store read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import redis

from tests.integration.test_cluster import two_nodes
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]


class SilentProxy:
    """TCP to Redis' unix socket; ``silent`` stops forwarding either way and keeps
    every connection open, as a dropped NAT mapping does."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.silent = False
        self.accepted = 0
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not self.silent:
                    writer.write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.socket))
        for task in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            t = asyncio.ensure_future(task)
            self._tasks.add(t)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SilentProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in self._tasks:
                task.cancel()


async def test_a_push_behind_a_silently_dead_subscriber_arrives(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        two_nodes(tmp_path, redis_server) as (a, b),
        SilentProxy(redis_server.socket).running() as proxy,
    ):
        daemon = await b.client()
        base = {"push_clientid": daemon.cid, "content": "c", "payload": {}}
        link = b.gateway._cluster
        assert link is not None
        # B's subscriber goes through the proxy from its next connection on.
        direct, link.url = link.url, f"redis://127.0.0.1:{proxy.port}"
        with redis.Redis.from_url(redis_server.url) as r:
            r.client_kill_filter(_type="pubsub")
        await a.ok("sendMessage", {**base, "title": "one"})
        assert (await daemon.next_push(timeout=10))["message"]["title"] == "one"
        assert proxy.accepted >= 1
        # B's subscriber is held open and silent; a new link would go direct.
        proxy.silent = True
        link.url = direct
        await a.ok("sendMessage", {**base, "title": "two"})
        frame = await daemon.next_push(timeout=30)  # SILENT_S (15 s) and the resync
        assert frame["message"]["title"] == "two"
        await daemon.no_push()

"""The cluster link's subscriber connection dropped by Redis (CLIENT KILL, or a
subscriber past client-output-buffer-limit pubsub) while the nodes' command
connections stay: the notices of the gap are lost, and the node that resubscribes
reads the store, so a push committed meanwhile on another node still arrives."""

from __future__ import annotations

from pathlib import Path

import redis

from tests.integration.test_cluster import two_nodes
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

APP = "__UNI__A"


async def test_a_push_in_the_gap_of_a_dropped_subscriber_arrives(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        base = {"push_clientid": daemon.cid, "content": "c", "payload": {}}
        await a.ok("sendMessage", {**base, "title": "one"})
        assert (await daemon.next_push())["message"]["title"] == "one"
        with redis.Redis.from_url(redis_server.url) as r:
            assert r.client_kill_filter(_type="pubsub") == 2  # both nodes' listeners
        await a.ok("sendMessage", {**base, "title": "two"})
        assert (await daemon.next_push(timeout=10))["message"]["title"] == "two"
        await a.ok("sendMessage", {**base, "title": "three"})
        assert (await daemon.next_push())["message"]["title"] == "three"
        await daemon.no_push()

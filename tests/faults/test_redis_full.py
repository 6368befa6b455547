"""A full Redis (maxmemory with noeviction) under a node: a sendMessage is answered an
error and stores nothing, and the same request_id is answered once room is back."""

from __future__ import annotations

from pathlib import Path

import redis

from tests.gatewaykit import running_gateway
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]


async def test_a_full_redis_refuses_a_push_whole_and_its_retry_is_answered_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(tmp_path / "gw", store=redis_server.url) as kit:
        client = await kit.client()
        body = {
            "push_clientid": client.cid,
            "title": "t",
            "content": "c",
            "payload": {},
            "request_id": "request-full-1",
        }
        r = redis.Redis.from_url(redis_server.url)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", r.info("memory")["used_memory"] - 100_000)
        try:
            status, answer = await kit.call("sendMessage", body)
        finally:
            r.config_set("maxmemory", 0)
        assert status == 500 and answer["errCode"] != 0, answer
        store = kit.gateway.store
        assert await store.after("__UNI__A", client.cid, 0) == []
        assert await store.answer_for("__UNI__A", "request-full-1") is None
        await client.no_push()
        ((_taskid, statuses),) = (await kit.ok("sendMessage", body)).items()
        assert statuses == {client.cid: "successed_online"}
        push = await client.next_push()
        assert push["message"]["title"] == "t"
        await client.no_push()

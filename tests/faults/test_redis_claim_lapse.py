"""A request_id's claim lapses under a call still running: the node making it loses
Redis (a real TCP proxy between it and redis-server, stalled) for longer than the
claim's ttl, after its claim and before its commit. The sender's retry on another
node takes the lapsed claim, stores the messages and answers. When the first node's
link comes back, its commit must store nothing and its caller must get the same
answer (one taskid): it stored the messages a second time (the same message id under
a second seq) and answered with a taskid no report knows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis

from tests.faults.harness import nodes_one_proxied
from tests.faults.test_cluster_kill_node import APPID, StandIn
from tests.redisstack import RedisServer, redis_server
from unipush_bridge.gateway.redisstore import CLAIM_TTL_S

__all__ = ["redis_server"]

#: Past the claim's ttl, inside the store's timeout (STORE_TIMEOUT_S: 10 s).
STALL_S = CLAIM_TTL_S + 2.0


async def test_a_lapsed_claim_stores_the_messages_once_and_answers_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with nodes_one_proxied(tmp_path, redis_server) as (proxy, a, b):
        cid = await b.offline_cid(APPID)
        store = a.gateway.store
        reads = store.known_many
        stalled = asyncio.Event()

        async def stall_then_read(appid: str, cids: list[str]) -> Any:
            """The link stalls once the claim is taken, before the commit."""
            if not stalled.is_set():
                stalled.set()
                await asyncio.to_thread(proxy.stall)
            return await reads(appid, cids)

        store.known_many = stall_then_read  # type: ignore[method-assign]
        body = {
            "push_clientid": cid,
            "title": "once",
            "content": "c",
            "payload": {},
            "request_id": "request-lapse-1",
            "group_name": "lapse",
        }
        first = asyncio.create_task(a.call("sendMessage", body, APPID))
        await asyncio.wait_for(stalled.wait(), 5)
        # The sender's retry on the other node: it waits for the claim to lapse.
        status, retried = await b.call("sendMessage", body, APPID)
        assert status == 200 and retried["errCode"] == 0, retried
        await asyncio.sleep(max(0.0, STALL_S - CLAIM_TTL_S))
        await asyncio.to_thread(proxy.restore)
        status, answer = await asyncio.wait_for(first, 15)
        assert status == 200, answer
        assert answer == retried, "two answers for one request_id"
        with redis.Redis.from_url(redis_server.url) as r:
            stored = r.zcard(f"up:m:{APPID}:{cid}")
        assert stored == 1, f"{stored} messages stored for one request_id"
        daemon = StandIn([b.ws_url.removesuffix("/ws")], cid=cid)
        await daemon.connect()
        done = asyncio.Event()
        reader = asyncio.create_task(daemon.run(done))
        await asyncio.sleep(0.5)
        done.set()
        await asyncio.wait_for(reader, 10)
        await daemon.close()
        assert daemon.titles == ["once"]

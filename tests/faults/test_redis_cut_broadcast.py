"""A node's Redis links (its store's and its subscriber's) are cut while broadcasts
are in flight, sent through that node and through another: every broadcast answered
reaches each daemon exactly once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.faults.harness import nodes_one_proxied, seeded_rng
from tests.faults.test_cluster_kill_node import APPID, StandIn, assert_exactly_once
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

ROUNDS = 12


async def test_a_cut_redis_link_under_broadcasts_loses_and_repeats_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rng = seeded_rng()
    fast = {"broadcast_per_minute": 1000}
    async with (
        nodes_one_proxied(tmp_path, redis_server, **fast) as (proxy, a, b),
        aiohttp.ClientSession() as http,
    ):
        urls = [a.ws_url.removesuffix("/ws"), b.ws_url.removesuffix("/ws")]
        daemons = [StandIn(urls) for _ in range(3)]
        for d in daemons:
            await d.connect()
        done = asyncio.Event()
        readers = [asyncio.create_task(d.run(done)) for d in daemons]
        sent: list[str] = []

        async def broadcast(n: int) -> None:
            body = {"title": f"m{n}", "content": "c", "payload": {}}
            body["request_id"] = f"request-{n:06d}"
            base = (a, b)[n % 2].base
            for _ in range(400):
                try:
                    url = f"{base}/api/{APPID}/sendMessage"
                    async with http.post(url, json=body) as r:
                        answer = await r.json()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
                    continue
                if r.status == 200 and answer["errCode"] == 0:
                    sent.append(f"m{n}")
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"m{n} never stored: {answer}")

        for n in range(ROUNDS):
            pushing = asyncio.create_task(broadcast(n))
            await asyncio.sleep(rng.uniform(0, 0.02))
            await asyncio.to_thread(proxy.cut)
            await pushing
        for _ in range(400):
            if all(len(d.titles) >= len(sent) for d in daemons):
                break
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*(asyncio.wait_for(r, 20) for r in readers))
        for d in daemons:
            await d.close()
        assert_exactly_once(daemons, sent)

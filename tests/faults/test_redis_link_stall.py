"""A node's Redis link stalls (not cut: a TCP proxy between it and redis-server holds
every byte, both ways, with the sockets open) for 10 s while daemons are connected to
it and pushes are sent through another node. Every push answered successed_* reaches
its daemon exactly once and in order, and once the link flows again the stalled node
delivers a new push at once, without a restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.faults.harness import nodes_one_proxied
from tests.faults.test_cluster_kill_node import APPID, StandIn, assert_exactly_once
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

STALL_S = 10.0


async def test_a_stalled_redis_link_loses_and_repeats_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        nodes_one_proxied(tmp_path, redis_server) as (proxy, a, b),
        aiohttp.ClientSession() as http,
    ):
        urls = [a.ws_url.removesuffix("/ws"), b.ws_url.removesuffix("/ws")]
        daemons = [StandIn(urls) for _ in range(2)]
        for d in daemons:
            await d.connect()
        done = asyncio.Event()
        readers = [asyncio.create_task(d.run(done)) for d in daemons]
        cids = [d.cid for d in daemons]
        sent: list[str] = []
        loop = asyncio.get_running_loop()

        async def push(n: int) -> None:
            body = {"push_clientid": cids, "title": f"m{n}", "content": "c", "payload": {}}
            body["request_id"] = f"request-{n:06d}"
            for _ in range(200):
                async with http.post(f"{b.base}/api/{APPID}/sendMessage", json=body) as r:
                    answer = await r.json()
                if r.status == 200 and answer["errCode"] == 0:
                    ((_taskid, statuses),) = answer["data"].items()
                    assert set(statuses.values()) <= {"successed_online", "successed_offline"}
                    sent.append(f"m{n}")
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"m{n} never stored: {answer}")

        for n in range(3):
            await push(n)
        await asyncio.to_thread(proxy.stall)
        end = loop.time() + STALL_S
        n = 3
        while loop.time() < end:
            await push(n)
            n += 1
            await asyncio.sleep(0.2)
        await asyncio.to_thread(proxy.restore)
        for _ in range(10):
            await push(n)
            n += 1
            await asyncio.sleep(0.1)
        for _ in range(300):
            if all(len(d.titles) >= len(sent) for d in daemons):
                break
            await asyncio.sleep(0.05)
        # recovered: a push after the stall reaches each daemon promptly
        started = loop.time()
        await push(n)
        for _ in range(100):
            if all(len(d.titles) >= len(sent) for d in daemons):
                break
            await asyncio.sleep(0.02)
        late = loop.time() - started
        done.set()
        await asyncio.gather(*(asyncio.wait_for(r, 20) for r in readers))
        for d in daemons:
            await d.close()
        assert_exactly_once(daemons, sent)
        assert late < 2.0, f"the last push took {late:.1f} s"

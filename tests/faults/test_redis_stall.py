"""issue 17 item 1: the Redis store is on redis-py's asyncio client, so a Redis that
stalls (SIGSTOP: a server swapping, a fork for a snapshot, a network that holds
packets) holds up only the requests that wait for it. The node's event loop goes on:
/healthz answers, connected daemons' websocket pings are answered, and the push that
waited is stored and delivered once when Redis comes back. With the store's calls
made on the loop's thread (redis-py's blocking client), every one of those waited for
Redis.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from tests.faults.test_cluster_kill_node import APPID, StandIn
from tests.gatewaykit import running_gateway
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

STALL_S = 1.5


async def test_a_stalled_redis_holds_up_only_the_requests_that_wait_for_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(tmp_path / "gw", store=redis_server.url) as kit:
        daemon = StandIn([kit.ws_url.removesuffix("/ws")])
        await daemon.connect()
        done = asyncio.Event()
        reader = asyncio.create_task(daemon.run(done))
        body = {
            "push_clientid": daemon.cid,
            "title": "after the stall",
            "content": "c",
            "payload": {},
            "request_id": "request-stall-1",
        }
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            stalled_at = time.monotonic()
            push = asyncio.create_task(kit.ok("sendMessage", body, APPID))
            await asyncio.sleep(0.2)
            assert not push.done(), "the push was answered while Redis could not store it"
            started = time.monotonic()
            async with kit.http.get(f"{kit.base}/healthz") as resp:
                assert resp.status == 200
            healthz_s = time.monotonic() - started
            assert daemon.ws is not None
            started = time.monotonic()
            await asyncio.wait_for(await daemon.ws.ping(), 1.0)
            ping_s = time.monotonic() - started
            print(
                f"during the stall: /healthz {healthz_s * 1e3:.1f} ms, ping {ping_s * 1e3:.1f} ms"
            )
            assert healthz_s < 0.5 and ping_s < 0.5
            await asyncio.sleep(max(0.0, STALL_S - (time.monotonic() - stalled_at)))
            assert not push.done()
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        ((_taskid, statuses),) = (await asyncio.wait_for(push, 10)).items()
        assert statuses == {daemon.cid: "successed_online"}
        for _ in range(100):
            if daemon.titles:
                break
            await asyncio.sleep(0.02)
        done.set()
        await asyncio.wait_for(reader, 10)
        await daemon.close()
    assert daemon.titles == ["after the stall"]

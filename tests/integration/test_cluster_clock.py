"""Two gateway nodes on one Redis whose wall clocks differ (one set two minutes behind
the other, as the Redis store's expiries already allow for): a push held for the next
app (``offline: hold``) carries ``hold_until``, and the daemon judges it against the
``now`` of the welcome it got from its own node. Both must be on one clock, or the
hold a sender asked for is two minutes short (a 60 s ttl: let go at once) or long.
Real websockets on loopback, a private redis-server; each node's clocks injected."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

from tests.gatewaykit import Clock, Kit
from tests.redisstack import RedisServer, redis_server
from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.server import Gateway

__all__ = ["redis_server"]

TTL_S = 300.0


async def test_hold_until_keeps_the_senders_ttl_across_nodes_whose_clocks_differ(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    behind, ahead = Clock(1_800_000_000.0 - 120), Clock(1_800_000_000.0)
    nodes = []
    for name, clock in (("a", behind), ("b", ahead)):
        config = GatewayConfig(
            host="127.0.0.1", port=0, data_dir=tmp_path / name, store=redis_server.url
        )
        gateway = Gateway(config, clock=clock, monotonic=clock)
        await gateway.start()
        nodes.append(gateway)
    try:
        async with aiohttp.ClientSession() as http:
            a = Kit(nodes[0], behind, http)
            ws = await connect(f"ws://127.0.0.1:{nodes[1].port}/ws", compression=None)
            await ws.send(json.dumps({"type": "hello", "v": 1, "appid": "__UNI__A", "acked": 0}))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["type"] == "welcome" and "now" in welcome, welcome
            body = {
                "push_clientid": [welcome["cid"]],
                "title": "held",
                "content": "c",
                "payload": {},
                "settings": {"ttl": int(TTL_S * 1000), "strategy": {"default": 3}},
            }
            await a.ok("sendMessage", body)
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            left = frame["message"]["hold_until"] - welcome["now"]
            # What the daemon will hold it for, as it measures: the sender's ttl.
            assert abs(left - TTL_S) < 2, f"held {left:.0f} s of a {TTL_S:.0f} s ttl"
            await ws.close()
    finally:
        for gateway in nodes:
            await gateway.stop()

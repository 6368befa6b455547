"""issue 17 item 3: SIGKILL a gateway node (a real process) while pushes stream through
the other node and a daemon stand-in is connected to the killed one: the daemon
reconnects to the surviving node with its cursor and gets every message exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from tests.procs import GatewayProc, Proc
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

APPID = "__UNI__A"
ENV = {"UNIPUSH_BRIDGE_GATEWAY_RATE_LIMIT": "0"}


async def hello(url: str, cid: str | None, acked: int) -> tuple[ClientConnection, str]:
    ws = await connect(f"{url}/ws", compression=None)
    frame: dict[str, Any] = {"type": "hello", "v": 1, "appid": APPID, "acked": acked}
    if cid:
        frame["cid"] = cid
    await ws.send(json.dumps(frame))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome", welcome
    return ws, str(welcome["cid"])


async def test_sigkill_a_node_under_a_stream_of_pushes_loses_and_repeats_nothing(
    tmp_path: Path, redis_server: RedisServer, procs: list[Proc]
) -> None:
    """issue 17 item 3: every message reaches its daemon exactly once."""
    nodes = []
    for name in ("a", "b"):
        env = {**ENV, "UNIPUSH_BRIDGE_GATEWAY_STORE": redis_server.url}
        node = GatewayProc(tmp_path / name, env=env)
        procs.append(node)
        nodes.append(node.start())
    a, b = nodes
    ws, cid = await hello(a.ws_url, None, 0)
    sent: list[str] = []
    got: list[str] = []
    acked = 0

    async def pusher() -> None:
        async with aiohttp.ClientSession() as http:
            for n in range(60):
                body = {"push_clientid": [cid], "title": f"m{n}", "content": "c", "payload": {}}
                body["request_id"] = f"request-{n:06d}"
                url = f"{b.http_url}/api/{APPID}/sendMessage"
                async with http.post(url, json=body) as resp:
                    answer = await resp.json()
                assert answer["errCode"] == 0, answer
                sent.append(f"m{n}")
                await asyncio.sleep(0.01)

    task = asyncio.create_task(pusher())
    killed = False
    while not task.done() or len(got) < len(sent):
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
        except Exception:  # the node died under us: resume on the other one
            ws, _ = await hello(b.ws_url, cid, acked)
            continue
        if frame.get("type") != "push":
            continue
        got.append(frame["message"]["title"])
        acked = frame["seq"]
        await ws.send(json.dumps({"type": "ack", "seq": acked}))
        if len(got) == 20 and not killed:
            a.stop(signal.SIGKILL)
            killed = True
    await task
    await ws.close()
    assert killed
    assert got == sent  # each once, in order

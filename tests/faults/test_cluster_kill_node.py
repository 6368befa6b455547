"""issue 17 item 3 (and its follow-up item 2): SIGKILL a gateway node (a real process)
while pushes stream, at a random moment (FAULT_SEED replays one): every message reaches
its daemon exactly once, in order.

- the node the sender talks to dies: the sender retries the request it got no answer
  for on the other node with the same request_id (what a load balancer in front does);
- the node the daemons are connected to dies: they reconnect to the other node with
  their cursor and resume there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from tests.faults.harness import seeded_rng
from tests.procs import GatewayProc, Proc
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]

APPID = "__UNI__A"
ENV = {"UNIPUSH_BRIDGE_GATEWAY_RATE_LIMIT": "0"}
PUSHES = 60


@dataclass
class StandIn:
    """A daemon stand-in that acks every push and, when its link drops, says hello
    again with its cursor to the first of ``urls`` that answers."""

    urls: list[str]
    cid: str | None = None
    acked: int = 0
    titles: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    ws: ClientConnection | None = None

    async def connect(self, deadline_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while True:
            for url in self.urls:
                with contextlib.suppress(Exception):
                    self.ws = await self._hello(url)
                    return
            if loop.time() > end:
                raise AssertionError(f"no node took the hello of {self.cid}")
            await asyncio.sleep(0.05)

    async def _hello(self, url: str) -> ClientConnection:
        ws = await connect(f"{url}/ws", compression=None, open_timeout=2)
        hello: dict[str, Any] = {"type": "hello", "v": 1, "appid": APPID, "acked": self.acked}
        if self.cid:
            hello["cid"] = self.cid
        await ws.send(json.dumps(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 3))
        assert welcome["type"] == "welcome", welcome
        self.cid = str(welcome["cid"])
        return ws

    async def run(self, until: asyncio.Event) -> None:
        """Receive and ack until ``until`` is set and nothing came for a while."""
        while True:
            assert self.ws is not None
            try:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), 0.5))
            except TimeoutError:
                if until.is_set():
                    return
                continue
            except Exception:  # the node died or Redis went away: resume elsewhere
                await self.connect()
                continue
            if frame.get("type") != "push":
                continue
            self.titles.append(frame["message"]["title"])
            self.seqs.append(frame["seq"])
            self.acked = max(self.acked, frame["seq"])
            with contextlib.suppress(Exception):
                await self.ws.send(json.dumps({"type": "ack", "seq": frame["seq"]}))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def send_until_answered(
    http: aiohttp.ClientSession, urls: list[str], body: dict[str, Any], deadline_s: float = 15
) -> dict[str, Any]:
    """POST sendMessage to the first node that answers; a failed or refused call is
    retried with the same body (the same request_id): a sender's retry."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        for url in urls:
            try:
                async with http.post(f"{url}/api/{APPID}/sendMessage", json=body) as resp:
                    answer: dict[str, Any] = await resp.json()
                if resp.status == 200 and answer.get("errCode") == 0:
                    return answer
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
        if loop.time() > end:
            raise AssertionError(f"no node accepted {body['request_id']}")
        await asyncio.sleep(0.05)


def start_nodes(tmp_path: Path, server: RedisServer, procs: list[Proc]) -> list[GatewayProc]:
    nodes = []
    for name in ("a", "b"):
        env = {**ENV, "UNIPUSH_BRIDGE_GATEWAY_STORE": server.url}
        node = GatewayProc(tmp_path / name, env=env)
        procs.append(node)
        nodes.append(node.start())
    return nodes


async def stream(
    daemons: list[StandIn],
    senders: list[str],
    rng: random.Random,
    kill: GatewayProc,
) -> list[str]:
    """PUSHES pushes to every daemon's cid through ``senders`` (the first while it is
    up); ``kill`` is SIGKILLed after a random number of them, a random moment into the
    next request (it may die before, during or after that request's commit). The
    titles sent."""
    kill_after = rng.randrange(5, PUSHES - 5)
    pause = rng.choice([0.0, 0.005, 0.02])
    delay = rng.uniform(0, 0.004)
    print(f"SIGKILL {delay * 1000:.1f} ms into push {kill_after}, {pause:g} s between pushes")
    loop = asyncio.get_running_loop()
    cids = [d.cid for d in daemons]
    done = asyncio.Event()
    readers = [asyncio.create_task(d.run(done)) for d in daemons]
    sent: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        for n in range(PUSHES):
            if n == kill_after:
                loop.call_later(delay, kill.send_signal, signal.SIGKILL)
            body = {"push_clientid": cids, "title": f"m{n}", "content": "c", "payload": {}}
            body["request_id"] = f"request-{n:06d}"
            await send_until_answered(http, senders, body)
            sent.append(f"m{n}")
            await asyncio.sleep(pause)
    done.set()
    await asyncio.wait_for(asyncio.gather(*readers), 20)
    kill.stop(signal.SIGKILL)
    return sent


def assert_exactly_once(daemons: list[StandIn], sent: list[str]) -> None:
    for d in daemons:
        assert d.titles == sent, f"{d.cid}: got {len(d.titles)} of {len(sent)}: {d.titles}"
        assert d.seqs == sorted(set(d.seqs)), f"{d.cid}: seqs repeat or go back: {d.seqs}"


async def test_sigkill_the_node_the_sender_talks_to_loses_and_repeats_nothing(
    tmp_path: Path, redis_server: RedisServer, procs: list[Proc]
) -> None:
    """issue 17 item 3 (follow-up item 2): the node accepting the pushes dies in the
    middle of the stream; the daemons on the other node get each push exactly once."""
    rng = seeded_rng()
    a, b = start_nodes(tmp_path, redis_server, procs)
    daemons = [StandIn([b.ws_url]) for _ in range(3)]
    for d in daemons:
        await d.connect()
    sent = await stream(daemons, [a.http_url, b.http_url], rng, kill=a)
    for d in daemons:
        await d.close()
    assert not a.alive()
    assert_exactly_once(daemons, sent)


async def test_sigkill_the_node_the_daemons_are_on_loses_and_repeats_nothing(
    tmp_path: Path, redis_server: RedisServer, procs: list[Proc]
) -> None:
    """issue 17 item 3 (follow-up item 2): the node holding the daemons dies while
    pushes stream through the other; they resume there from their cursors."""
    rng = seeded_rng()
    a, b = start_nodes(tmp_path, redis_server, procs)
    daemons = [StandIn([a.ws_url, b.ws_url]) for _ in range(3)]
    for d in daemons:
        await d.connect()
    sent = await stream(daemons, [b.http_url], rng, kill=a)
    for d in daemons:
        await d.close()
    assert not a.alive()
    assert_exactly_once(daemons, sent)

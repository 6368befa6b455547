"""issue 17 item 2: two gateway nodes on one Redis are one service (real websockets on
loopback, a private redis-server); without the cluster link a push accepted by one node
waits for the daemon's next reconnect to reach a daemon held by the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from tests.gatewaykit import Kit, running_gateway
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, server: RedisServer) -> AsyncIterator[tuple[Kit, Kit]]:
    async with (
        running_gateway(tmp_path / "a", store=server.url) as a,
        running_gateway(tmp_path / "b", store=server.url) as b,
    ):
        yield a, b


def push(cid: str, title: str) -> dict[str, object]:
    body = {"push_clientid": [cid], "title": title, "content": "c", "payload": {}}
    return {**body, "request_id": f"request-{title}"}


async def test_a_push_accepted_by_one_node_reaches_a_daemon_on_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 2: at once, not at the next reconnect."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        await a.ok("sendMessage", push(daemon.cid, "one"))
        frame = await daemon.next_push(timeout=2)
        assert frame["message"]["title"] == "one"
        await daemon.no_push()


async def test_a_daemon_that_reconnects_to_another_node_resumes_from_its_cursor(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 2: what was acked on node A is not sent again by node B."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await a.client()
        await a.ok("sendMessage", push(daemon.cid, "one"))
        first = await daemon.next_push()
        await daemon.ack(first["seq"])
        await asyncio.sleep(0.1)
        await daemon.ws.close()
        await b.ok("sendMessage", push(daemon.cid, "two"))
        again = await b.client(cid=daemon.cid, acked=first["seq"])
        frame = await again.next_push()
        assert frame["message"]["title"] == "two" and frame["seq"] > first["seq"]
        await again.no_push()


async def test_a_cid_on_two_nodes_resolves_to_the_newest_connection(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 2: the older connection, on the other node, is closed as replaced."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        old = await a.client()
        new = await b.client(cid=old.cid)
        with contextlib.suppress(Exception):
            while True:
                await asyncio.wait_for(old.ws.recv(), 2)
        assert old.ws.close_code == 4409
        await a.ok("sendMessage", push(old.cid, "one"))
        assert (await new.next_push())["message"]["title"] == "one"


async def test_a_broadcast_reaches_every_nodes_daemons(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 2: a broadcast through node A reaches the daemons on A and on B."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemons = [await a.client(), await b.client(), await b.client()]
        await a.ok("sendMessage", {"title": "all", "content": "c", "payload": {}})
        for daemon in daemons:
            frame = await daemon.next_push(timeout=2)
            assert json.dumps(frame["message"]["title"]) == '"all"'

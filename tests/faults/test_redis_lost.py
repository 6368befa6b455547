"""A Redis that lost its data under a running node (FLUSHALL, or restarted with no
persistence): the daemons connected meanwhile register again, and pushes reach them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.faults.test_cluster_kill_node import APPID, StandIn
from tests.gatewaykit import Kit, running_gateway
from tests.redisstack import RedisServer, own_redis


@pytest.fixture
def bare_redis() -> Iterator[RedisServer]:
    """A server of the test's own with no persistence at all: a restart loses everything."""
    with own_redis(appendonly=False) as server:
        yield server


async def push_until_accepted(kit: Kit, body: dict[str, Any], deadline_s: float) -> Any:
    """A sender retrying (same request_id) until the call is accepted."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        status, answer = await kit.call("sendMessage", body, APPID)
        if status == 200 and answer["errCode"] == 0:
            return answer["data"]
        assert loop.time() < end, f"still refused: {answer}"
        await asyncio.sleep(0.1)


async def until(condition: Any, deadline_s: float = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("loss", ["flushall", "restart"])
async def test_daemons_connected_through_a_data_loss_register_again(
    tmp_path: Path, bare_redis: RedisServer, loss: str
) -> None:
    """The daemons' registrations went with the data while their links stayed up:
    every push to them was answered "target user is invalid" until each daemon
    happened to reconnect (a quiet link never does)."""
    async with running_gateway(tmp_path / "gw", store=bare_redis.url) as kit:
        daemon = StandIn([kit.ws_url.removesuffix("/ws")])
        await daemon.connect()
        done = asyncio.Event()
        reader = asyncio.create_task(daemon.run(done))
        body = {"push_clientid": daemon.cid, "title": "before", "content": "c", "payload": {}}
        await kit.ok("sendMessage", {**body, "request_id": "request-lost-1"}, APPID)
        await until(lambda: daemon.titles == ["before"])
        if loss == "flushall":
            with redis.Redis.from_url(bare_redis.url) as r:
                r.flushall()
        else:
            bare_redis.restart()
        after = {**body, "title": "after", "request_id": "request-lost-2"}
        ((_taskid, statuses),) = (await push_until_accepted(kit, after, 20)).items()
        assert statuses == {daemon.cid: "successed_online"}
        await until(lambda: daemon.titles == ["before", "after"])
        done.set()
        await asyncio.wait_for(reader, 10)
        await daemon.close()
    assert daemon.titles == ["before", "after"]

"""A Redis that came back with older data than it answered (restarted from an older
snapshot, a replica that lagged taking over, a power cut under everysec) under a
connected daemon: its seq counter went back, so new pushes took seqs the daemon's
connection had sent already, were skipped, and were answered successed_online."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.test_cluster_kill_node import APPID, StandIn
from tests.faults.test_redis_lost import push_until_accepted, until
from tests.gatewaykit import running_gateway
from tests.redisstack import RedisServer, own_redis


@pytest.fixture
def snapshot_redis() -> Iterator[RedisServer]:
    """No appendonly: a restart loads the last SAVE's snapshot."""
    with own_redis(appendonly=False) as server:
        yield server


@pytest.mark.parametrize("push_first", [True, False])
async def test_a_store_rolled_back_under_a_connected_daemon_still_delivers(
    tmp_path: Path, snapshot_redis: RedisServer, push_first: bool
) -> None:
    """``push_first``: the first push after the restart finds the rollback; otherwise
    the node's beat does, before any push."""
    async with running_gateway(tmp_path / "gw", store=snapshot_redis.url) as kit:
        daemon = StandIn([kit.ws_url.removesuffix("/ws")])
        await daemon.connect()
        done = asyncio.Event()
        reader = asyncio.create_task(daemon.run(done))
        body = {"push_clientid": daemon.cid, "content": "c", "payload": {}}
        for n in range(1, 4):
            push = {**body, "title": f"t{n}", "request_id": f"request-rollback-{n}"}
            await kit.ok("sendMessage", push, APPID)
            if n == 1:
                await until(lambda: daemon.titles == ["t1"])
                with redis.Redis.from_url(snapshot_redis.url) as r:
                    r.save()  # the snapshot the restart goes back to
        await until(lambda: daemon.titles == ["t1", "t2", "t3"])
        snapshot_redis.restart()
        if not push_first:
            await asyncio.sleep(6)  # a beat (every 5 s) reads the store again
        after = {**body, "title": "after", "request_id": "request-rollback-after"}
        ((_taskid, statuses),) = (await push_until_accepted(kit, after, 20)).items()
        assert statuses == {daemon.cid: "successed_online"}
        await until(lambda: daemon.titles[-1:] == ["after"])
        done.set()
        await asyncio.wait_for(reader, 10)
        await daemon.close()
    assert daemon.titles == ["t1", "t2", "t3", "after"]

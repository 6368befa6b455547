"""issue 17 item 3 (and its follow-up item 2): Redis restarted under connected daemons
(a real redis-server with appendonly, stopped by SIGTERM or SIGKILL, with appendfsync
everysec and always) while pushes stream through two gateway nodes. Nothing the
daemons or the senders are told is false: no push is answered as stored while Redis
cannot store it, every push answered successed_* reaches its daemon exactly once and
in order, and no daemon is sent a seq at or below its cursor.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.harness import seeded_rng
from tests.faults.test_cluster_kill_node import APPID, StandIn, assert_exactly_once
from tests.gatewaykit import running_gateway
from tests.redisstack import RedisServer, require_redis

PUSHES = 40


@pytest.fixture(params=["everysec", "always"])
def aof_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    require_redis()
    directory = Path(tempfile.mkdtemp(prefix="upredis-"))
    server = RedisServer(directory, appendfsync=request.param, appendonly=True)
    server.start()
    yield server
    server.kill()
    shutil.rmtree(directory, ignore_errors=True)


class Outage:
    """When Redis was gone: from its process' exit to the start of the new one."""

    def __init__(self) -> None:
        self.gone: float | None = None
        self.back: float | None = None

    def within(self, sent: float, answered: float) -> bool:
        """The request was sent and answered while no Redis was running at all."""
        return self.gone is not None and self.gone < sent and answered < (self.back or 1e18)


async def push_until_stored(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], outage: Outage
) -> tuple[dict[str, Any], int]:
    """Retry one request (same request_id) until it is answered errCode 0: the answer,
    and how many refusals came first. An errCode 0 while Redis is down is a lie."""
    loop = asyncio.get_running_loop()
    for refused in range(400):
        sent = loop.time()
        async with http.post(f"{url}/api/{APPID}/sendMessage", json=body) as resp:
            answer: dict[str, Any] = await resp.json()
        if resp.status == 200 and answer["errCode"] == 0:
            assert not outage.within(sent, loop.time()), f"stored with no Redis: {answer}"
            return answer, refused
        assert "successed" not in str(answer), answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"{body['request_id']} never stored")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_redis_restart_tells_daemons_and_senders_nothing_false(
    tmp_path: Path, aof_redis: RedisServer, sig: signal.Signals
) -> None:
    """issue 17 item 3 (follow-up item 2): Redis stops (SIGTERM: a clean shutdown;
    SIGKILL: the process dies, its last writes in the kernel's page cache) and starts
    again on its appendonly file, in the middle of a stream of pushes."""
    rng = seeded_rng()
    restart_after = rng.randrange(5, PUSHES - 10)
    outage = rng.uniform(0.1, 0.6)
    print(f"{sig.name} after push {restart_after}, down {outage:.2f} s")
    gap = Outage()
    loop = asyncio.get_running_loop()
    async with (
        running_gateway(tmp_path / "a", store=aof_redis.url) as a,
        running_gateway(tmp_path / "b", store=aof_redis.url) as b,
    ):
        daemons = [StandIn([a.ws_url.removesuffix("/ws")]), StandIn([b.ws_url.removesuffix("/ws")])]
        for d in daemons:
            await d.connect()
        done = asyncio.Event()
        readers = [asyncio.create_task(d.run(done)) for d in daemons]
        cids = [d.cid for d in daemons]
        sent: list[str] = []
        refusals = 0

        async def restart() -> None:
            await asyncio.to_thread(aof_redis.kill, sig)
            gap.gone = loop.time()
            await asyncio.sleep(outage)
            gap.back = loop.time()
            await asyncio.to_thread(aof_redis.start)

        restarting: asyncio.Task[None] | None = None
        async with aiohttp.ClientSession() as http:
            n = 0
            # Past PUSHES while the restart is still under way: a SIGTERM'd Redis may
            # take longer to go than the last pushes take to be stored.
            while n < PUSHES or (restarting is not None and not restarting.done()):
                if n == restart_after:
                    restarting = asyncio.create_task(restart())
                    await asyncio.sleep(0)
                body = {"push_clientid": cids, "title": f"m{n}", "content": "c", "payload": {}}
                body["request_id"] = f"request-{n:06d}"
                url = (a if n % 2 else b).base
                answer, refused = await push_until_stored(http, url, body, gap)
                refusals += refused
                ((_taskid, statuses),) = answer["data"].items()
                assert set(statuses.values()) <= {"successed_online", "successed_offline"}
                sent.append(f"m{n}")
                n += 1
        assert restarting is not None
        await restarting
        done.set()
        await asyncio.wait_for(asyncio.gather(*readers), 20)
        for d in daemons:
            await d.close()
    assert refusals > 0, "the restart happened while no push was being made"
    assert_exactly_once(daemons, sent)

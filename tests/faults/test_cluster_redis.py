"""issue 17 item 3 (in part): Redis killed and restarted under a connected daemon (a real
redis-server process and signals): while Redis is gone a push is refused, never
answered successed_online for a message that is not stored; once Redis is back the
same gateway stores and delivers again, and the cluster link resubscribes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.gatewaykit import running_gateway
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]


def push(cid: str, title: str) -> dict[str, object]:
    body = {"push_clientid": [cid], "title": title, "content": "c", "payload": {}}
    return {**body, "request_id": f"request-{title}"}


async def test_a_redis_restart_tells_a_connected_daemon_nothing_false(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 3: SIGKILL Redis, push, restart Redis (appendonly), push again."""
    async with (
        running_gateway(tmp_path / "a", store=redis_server.url) as a,
        running_gateway(tmp_path / "b", store=redis_server.url) as b,
    ):
        daemon = await b.client()
        await a.ok("sendMessage", push(daemon.cid, "before"))
        first = await daemon.next_push()
        await daemon.ack(first["seq"])
        await asyncio.sleep(1.2)  # past appendfsync everysec: the ack is on disk
        redis_server.kill(signal.SIGKILL)
        status, answer = await a.call("sendMessage", push(daemon.cid, "while-down"))
        assert status >= 500 or answer["errCode"] != 0, answer
        assert "successed_online" not in str(answer)
        await daemon.no_push(0.3)
        redis_server.start()
        await asyncio.sleep(0.5)  # the cluster link resubscribes
        data = await a.ok("sendMessage", push(daemon.cid, "after"))
        assert "successed_" in str(data)
        frame = await daemon.next_push(timeout=3)
        assert frame["message"]["title"] == "after" and frame["seq"] > first["seq"]
        await daemon.no_push()

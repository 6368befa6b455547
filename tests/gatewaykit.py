"""An in-process gateway on a loopback port with a clock the test moves, and thin
protocol clients, for tests of the gateway's API that need time under control."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.server import Gateway

#: The body uni-push-admin's sendMessage page posts with its defaults: every field of
#: its form, the unused ones "" and the vendor channels null (no target: add one).
UNI_PUSH_ADMIN_FORM: dict[str, Any] = {
    "platform": "ALL",
    "title": "Sale",
    "content": "Today only",
    "open_url": "",
    "payload": {"page": "/pages/sale"},
    "badge": "+1",
    "sound": "",
    "content_available": 0,
    "force_notification": False,
    "appId": "__UNI__A",
    "options": "",
    "channel": {"hw": None, "xm": None, "vivo": None, "oppo": None},
    "must_report": True,
}


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Client:
    """A daemon stand-in speaking the wire protocol; acks only when told to."""

    ws: ClientConnection
    cid: str
    acked: int
    pushes: list[dict[str, Any]] = field(default_factory=list)

    async def next_push(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert frame["type"] == "push", frame
        self.pushes.append(frame)
        return frame

    async def no_push(self, wait: float = 0.2) -> None:
        with contextlib.suppress(TimeoutError):
            frame = await asyncio.wait_for(self.ws.recv(), wait)
            raise AssertionError(f"unexpected frame {frame}")

    async def ack(self, seq: int) -> None:
        await self.ws.send(json.dumps({"type": "ack", "seq": seq}))

    async def receipt(self, push: dict[str, Any], event: str) -> None:
        await self.ws.send(
            json.dumps(
                {
                    "type": "receipt",
                    "id": push["id"],
                    "taskid": push["message"]["taskid"],
                    "event": event,
                }
            )
        )


class Kit:
    def __init__(self, gateway: Gateway, clock: Clock, http: aiohttp.ClientSession) -> None:
        self.gateway = gateway
        self.clock = clock
        self.http = http

    @property
    def base(self) -> str:
        return self.gateway.http_url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}/ws"

    async def call(
        self,
        method: str,
        body: Any = None,
        appid: str = "__UNI__A",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            f"{self.base}/api/{appid}/{method}", json=body, headers=headers or {}
        ) as resp:
            return resp.status, await resp.json()

    async def ok(
        self,
        method: str,
        body: Any = None,
        appid: str = "__UNI__A",
        headers: dict[str, str] | None = None,
    ) -> Any:
        status, answer = await self.call(method, body, appid, headers)
        assert status == 200 and answer["errCode"] == 0, answer
        return answer["data"]

    async def client(
        self,
        appid: str = "__UNI__A",
        cid: str | None = None,
        acked: int = 0,
        token: str | None = None,
    ) -> Client:
        ws = await connect(self.ws_url, compression=None)
        hello: dict[str, Any] = {"type": "hello", "v": 1, "appid": appid, "acked": acked}
        if cid:
            hello["cid"] = cid
        if token:
            hello["token"] = token
        await ws.send(json.dumps(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome", welcome
        return Client(ws, welcome["cid"], welcome["acked"])

    async def offline_cid(self, appid: str = "__UNI__A") -> str:
        """A registered cid whose daemon has gone away."""
        client = await self.client(appid)
        await client.ws.close()
        for _ in range(100):
            if client.cid not in await self.gateway.online(appid, [client.cid]):
                break
            await asyncio.sleep(0.01)
        return client.cid


@contextlib.asynccontextmanager
async def running_gateway(data_dir: Path, **config: Any) -> AsyncIterator[Kit]:
    clock = Clock()
    settings = {"host": "127.0.0.1", "port": 0, "data_dir": data_dir, **config}
    gateway = Gateway(GatewayConfig(**settings), clock=clock, monotonic=clock)
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Kit(gateway, clock, http)
    finally:
        await gateway.stop()

"""A small daemon double speaking the local API through ``wire/local.py``, so the
clients are tested against the protocol while the real daemon is being rewritten.

It answers the uni calls with canned results, records every request, and lets a
test push events, hold answers back, drop connections and stop. ``ThreadedDaemon``
runs one on its own loop, for SyncPushClient, whose calls block the test's thread."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from unipush_bridge.errors import ProtocolError
from unipush_bridge.wire.local import (
    Answer,
    BadRequest,
    Event,
    Request,
    encode_answer,
    encode_event,
    fail,
    ok,
    parse_request,
)

CID = "0123456789abcdef0123456789abcdef"
DETAILS: list[dict[str, Any]] = [
    {
        "channelId": "DcloudChannelID",
        "channelDesc": "Default",
        "soundName": None,
        "enableLights": False,
        "enableVibration": False,
        "importance": 3,
        "lockscreenVisibility": -1000,
    },
    {
        "channelId": "news",
        "channelDesc": "News",
        "soundName": "pling",
        "enableLights": True,
        "enableVibration": False,
        "importance": 4,
        "lockscreenVisibility": 1,
    },
]
T = TypeVar("T")


def short_socket_path() -> Path:
    """AF_UNIX paths are limited to ~100 bytes; pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="upc-")) / "d.sock"


class FakeDaemon:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[Request] = []
        self.acks: list[str] = []
        self.listeners: list[asyncio.StreamWriter] = []
        self.connections: list[asyncio.StreamWriter] = []
        #: Methods whose calls get no answer (until the daemon goes away).
        self.hold: set[str] = set()
        #: Events sent to each new subscriber (a replay after a restart).
        self.replay: list[Event] = []
        #: Canned results by method, answered instead of the usual ones.
        self.override: dict[str, dict[str, Any]] = {}
        self._server: asyncio.Server | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> FakeDaemon:
        self._server = await asyncio.start_unix_server(self._serve, str(self.path))
        return self

    async def stop(self) -> None:
        """The daemon goes away: no more listening, every connection dropped."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def drop(self) -> None:
        """Cut every connection but keep listening (a restart, seen from a client)."""
        writers = list(self.connections)
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self.connections.clear()
        self.listeners.clear()
        self.subscribed.clear()

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def push(self, data: dict[str, Any], push_id: str | None = None) -> None:
        for writer in list(self.listeners):
            writer.write(encode_event(Event(data, push_id)))
            await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        try:
            while line := await reader.readline():
                try:
                    req = parse_request(line)
                except BadRequest as exc:
                    writer.write(encode_answer(exc.answer))
                    continue
                self.requests.append(req)
                if req.method == "ack":  # one-way: never answered
                    self.acks += req.params["push_ids"]
                    continue
                if req.method in self.hold:
                    continue
                writer.write(encode_answer(Answer(req.id, self._answer(req, writer))))
                await writer.drain()
                if req.method == "onPushMessage":
                    for event in self.replay:
                        writer.write(encode_event(event))
                    await writer.drain()
                    self.subscribed.set()
        except (ConnectionError, ProtocolError):
            pass
        finally:
            if writer in self.listeners:
                self.listeners.remove(writer)
            if writer in self.connections:
                self.connections.remove(writer)
            writer.close()

    def _answer(self, req: Request, writer: asyncio.StreamWriter) -> dict[str, Any]:
        m, p = req.method, req.params
        if m in self.override:
            return self.override[m]
        if m == "getPushClientId":
            return ok(m, cid=CID)
        if m == "onPushMessage":
            if writer not in self.listeners:
                self.listeners.append(writer)
            return ok(m)
        if m == "offPushMessage":
            if writer in self.listeners:
                self.listeners.remove(writer)
            return ok(m)
        if m == "createPushMessage":
            if not p.get("content"):
                return fail(m, "content is required")
            return ok(m, notification_id="n1")
        if m == "setPushChannel":
            if not p.get("channelId") or not p.get("channelDesc"):
                return fail(m, "channelId and channelDesc are required")
            return ok(m)
        if m == "getAllChannels":
            return ok(m, channels=[c["channelId"] for c in DETAILS])
        if m == "getChannelDetails":
            return ok(m, channels=DETAILS)
        if m == "status":
            return ok(m, appid="__UNI__TEST", cid=CID, listeners=len(self.listeners))
        if m == "history":
            return ok(m, entries=[{"title": "t", "content": "c"}][: p.get("limit", 20)])
        return fail(m, "unknown method")


class ThreadedDaemon:
    """A FakeDaemon on a loop of its own thread."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.daemon = FakeDaemon(path)
        self.run(self.daemon.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.run(self.daemon.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

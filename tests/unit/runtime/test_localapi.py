"""runtime/localapi.py in process: a LocalApiServer on a private Unix socket, a fake Api
behind it, and clients speaking wire/local.py over asyncio.open_unix_connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.errors import AlreadyRunning, ApiFail
from unipush_bridge.runtime import localapi
from unipush_bridge.runtime.localapi import ApiConnection, LocalApiServer
from unipush_bridge.runtime.localpush import DEFAULT, Channel
from unipush_bridge.wire import local as wire

CID = "0123456789abcdef0123456789abcdef"
WAIT = 2.0
NEWS = Channel("news", "News", sound_name="pling", enable_lights=True, importance=4)
KNOWN = (
    "getPushClientId",
    "onPushMessage",
    "offPushMessage",
    "createPushMessage",
    "setPushChannel",
    "getAllChannels",
    "getChannelDetails",
    "history",
    "clickHistory",
    "setQuietHours",
    "getQuietHours",
    "status",
)


@dataclass
class FakeApi:
    """The daemon as the local API sees it; ``fail`` makes the next calls fail."""

    fail: str | None = None
    crash: bool = False
    cid_gate: asyncio.Event | None = None
    listeners: list[ApiConnection] = field(default_factory=list)
    subscribed: asyncio.Queue[ApiConnection] = field(default_factory=asyncio.Queue)
    unsubscribed: asyncio.Queue[ApiConnection] = field(default_factory=asyncio.Queue)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _check(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.crash:
            raise RuntimeError("boom")
        if self.fail is not None:
            raise ApiFail(self.fail)

    async def get_push_client_id(self, timeout: float | None) -> str:
        self._check("get_push_client_id", timeout)
        if self.cid_gate is not None:
            await self.cid_gate.wait()
        return CID

    async def subscribe(self, listener: ApiConnection) -> None:
        self._check("subscribe", None)
        if listener not in self.listeners:
            self.listeners.append(listener)
        self.subscribed.put_nowait(listener)

    def unsubscribe(self, listener: ApiConnection) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)
            self.unsubscribed.put_nowait(listener)

    async def create_push_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check("create_push_message", params)
        return {"id": "n1"}

    def set_push_channel(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check("set_push_channel", params)
        return {"created": True}

    def all_channels(self) -> list[Channel]:
        self._check("all_channels", None)
        return [DEFAULT, NEWS]

    def history(self, limit: int) -> list[dict[str, Any]]:
        self._check("history", limit)
        return [{"id": "h1", "title": "t"}][:limit]


def exists(path: Path) -> bool:
    return path.exists()


def status() -> dict[str, Any]:
    return {"appid": "__UNI__T", "listeners": 0}


class ApiClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._next = 0

    async def send_line(self, line: bytes) -> None:
        self.writer.write(line)
        await self.writer.drain()

    async def line(self, timeout: float = WAIT) -> wire.Answer | wire.Event:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        assert raw, "the daemon closed the connection"
        return wire.parse_daemon_line(raw)

    async def answer(self) -> wire.Answer:
        got = await self.line()
        assert isinstance(got, wire.Answer), got
        return got

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next += 1
        rid = self._next
        await self.send_line(wire.encode_request(wire.Request(rid, method, params or {})))
        got = await self.answer()
        assert got.id == rid
        return got.result

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
def sock_path() -> Iterator[Path]:
    """AF_UNIX paths are short (~108 bytes); pytest's tmp_path may not be. The socket's
    directory does not exist yet: the server makes it."""
    base = Path(tempfile.mkdtemp(prefix="upl-"))
    yield base / "run" / "d.sock"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def server(api: FakeApi, sock_path: Path) -> AsyncIterator[LocalApiServer]:
    srv = LocalApiServer(api, sock_path, status, cid_timeout=3.0)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client(server: LocalApiServer) -> AsyncIterator[ApiClient]:
    c = await connect(server.path)
    yield c
    await c.close()


async def connect(path: Path) -> ApiClient:
    reader, writer = await asyncio.open_unix_connection(str(path))
    return ApiClient(reader, writer)


# methods -------------------------------------------------------------------------------


async def test_get_push_client_id(client: ApiClient, api: FakeApi) -> None:
    assert await client.call("getPushClientId") == {"errMsg": "getPushClientId:ok", "cid": CID}
    assert api.calls[-1] == ("get_push_client_id", 3.0)  # the server's default timeout
    assert (await client.call("getPushClientId", {"timeout": 0.5}))["cid"] == CID
    assert api.calls[-1] == ("get_push_client_id", 0.5)
    for bad in (-1, "10", True, None):
        assert await client.call("getPushClientId", {"timeout": bad}) == {
            "errMsg": "getPushClientId:fail timeout must be a number of seconds, 0 or more"
        }
    api.fail = "register fail: no registration within 0.5 s"
    assert await client.call("getPushClientId") == {
        "errMsg": "getPushClientId:fail register fail: no registration within 0.5 s"
    }


@pytest.mark.parametrize(
    ("method", "params", "fields"),
    [
        ("createPushMessage", {"content": "x"}, {"id": "n1"}),
        ("setPushChannel", {"channelId": "c", "channelDesc": "d"}, {"created": True}),
        ("history", {"limit": 1}, {"entries": [{"id": "h1", "title": "t"}]}),
        ("onPushMessage", {}, {}),
    ],
)
async def test_each_method_answers_ok_or_fail_with_its_reason(
    client: ApiClient, api: FakeApi, method: str, params: dict[str, Any], fields: dict[str, Any]
) -> None:
    assert await client.call(method, params) == {"errMsg": f"{method}:ok", **fields}
    api.fail = "a reason"
    assert await client.call(method, params) == {"errMsg": f"{method}:fail a reason"}
    api.fail, api.crash = None, True
    assert await client.call(method, params) == {
        "errMsg": f"{method}:fail internal error: RuntimeError"
    }


async def test_channels_as_ids_and_as_details(client: ApiClient) -> None:
    assert await client.call("getAllChannels") == {
        "errMsg": "getAllChannels:ok",
        "channels": ["DcloudChannelID", "news"],
    }
    details = await client.call("getChannelDetails")
    assert details["errMsg"] == "getChannelDetails:ok"
    assert details["channels"] == [DEFAULT.to_uni(), NEWS.to_uni()]
    assert details["channels"][1] == {
        "channelId": "news",
        "channelDesc": "News",
        "soundName": "pling",
        "enableLights": True,
        "enableVibration": False,
        "importance": 4,
        "lockscreenVisibility": -1000,
    }


async def test_history_limit_rules(client: ApiClient, api: FakeApi) -> None:
    assert (await client.call("history"))["errMsg"] == "history:ok"
    assert api.calls[-1] == ("history", 20)
    for bad in (0, 10_001, 2.5, True, "5"):
        assert await client.call("history", {"limit": bad}) == {
            "errMsg": "history:fail limit must be a whole number from 1 to 10000"
        }


async def test_status_and_off(client: ApiClient, api: FakeApi) -> None:
    assert await client.call("status") == {"errMsg": "status:ok", **status()}
    assert await client.call("onPushMessage") == {"errMsg": "onPushMessage:ok"}
    assert len(api.listeners) == 1
    assert await client.call("offPushMessage") == {"errMsg": "offPushMessage:ok"}
    assert api.listeners == []


async def test_unknown_method_names_the_known_ones(client: ApiClient) -> None:
    result = await client.call("getPushClientID")
    assert result == {"errMsg": "getPushClientID:fail unknown method; known: " + ", ".join(KNOWN)}


async def test_params_that_are_not_an_object(client: ApiClient) -> None:
    await client.send_line(b'{"id": 4, "method": "history", "params": [1]}\n')
    got = await client.answer()
    assert (got.id, got.result) == (4, {"errMsg": "history:fail params must be an object"})


async def test_lines_that_are_not_requests_and_the_connection_stays_usable(
    client: ApiClient,
) -> None:
    for line, reason in [
        (b"not json\n", "request is not JSON: Expecting value"),
        (b"[1, 2]\n", "request must be a JSON object"),
        (b'"text"\n', "request must be a JSON object"),
        (b'{"id": 9}\n', "method must be a non-empty string"),
    ]:
        await client.send_line(line)
        got = await client.answer()
        assert got.result == {"errMsg": f"request:fail {reason}"}, line
        assert got.id == (9 if b'"id": 9' in line else None)
    assert (await client.call("getPushClientId"))["cid"] == CID


async def test_a_slow_call_does_not_hold_up_the_next(client: ApiClient, api: FakeApi) -> None:
    api.cid_gate = asyncio.Event()
    await client.send_line(wire.encode_request(wire.Request(1, "getPushClientId")))
    await client.send_line(wire.encode_request(wire.Request(2, "status")))
    second = await client.answer()
    assert second.id == 2
    api.cid_gate.set()
    first = await client.answer()
    assert (first.id, first.result["cid"]) == (1, CID)


# listeners and events --------------------------------------------------------------------


async def test_events_carry_push_id_and_not_id(client: ApiClient, api: FakeApi) -> None:
    await client.call("onPushMessage")
    (listener,) = api.listeners
    event = {"type": "receive", "data": {"title": "t", "content": "c"}}
    listener.deliver(event, push_id="m1")
    listener.deliver({"type": "click", "data": {"title": "t"}})
    raw = await asyncio.wait_for(client.reader.readline(), WAIT)
    line = json.loads(raw)
    assert line == {"event": "push", "push_id": "m1", "data": event}
    assert "id" not in line
    got = wire.parse_daemon_line(raw)
    assert isinstance(got, wire.Event) and got.push_id == "m1"
    click = json.loads(await asyncio.wait_for(client.reader.readline(), WAIT))
    assert "push_id" not in click and "id" not in click


async def test_closing_the_connection_unsubscribes(server: LocalApiServer, api: FakeApi) -> None:
    c = await connect(server.path)
    await c.call("onPushMessage")
    (listener,) = api.listeners
    await c.close()
    assert await asyncio.wait_for(api.unsubscribed.get(), WAIT) is listener
    await asyncio.wait_for(listener.wait_closed(), WAIT)
    assert listener.closed


async def test_held_once_lines_are_in_the_kernel(client: ApiClient, api: FakeApi) -> None:
    await client.call("onPushMessage")
    (listener,) = api.listeners
    for n in range(3):
        listener.deliver({"type": "receive", "data": {"n": n}}, push_id=f"m{n}")
    # the app has read nothing yet: the lines are in the socket buffer, which is enough
    assert await asyncio.wait_for(listener.held(), WAIT) is True
    for n in range(3):
        got = await client.line()
        assert isinstance(got, wire.Event) and got.data["data"] == {"n": n}


async def test_with_acks_held_waits_for_the_app_not_the_socket(
    client: ApiClient, api: FakeApi
) -> None:
    """A client that acknowledges: an event in its socket buffer is not yet held; it
    is once the app acknowledged it. Acks are one-way: no answer comes back."""
    await client.call("onPushMessage", {"ack": True})
    (listener,) = api.listeners
    for n in range(3):
        listener.deliver({"type": "receive", "data": {"n": n}}, push_id=f"m{n}")
    held = asyncio.ensure_future(listener.held(("m0", "m1", "m2")))
    for _ in range(3):
        await client.line()
    await asyncio.sleep(0.05)
    assert not held.done()  # read, but not acknowledged
    await client.send_line(wire.encode_ack(["m0", "m1"]))
    await asyncio.sleep(0.05)
    assert not held.done()
    await client.send_line(wire.encode_ack(["m2"]))
    assert await asyncio.wait_for(held, WAIT) is True
    assert await listener.held(("m0",)) is True  # acknowledged before the question
    assert (await client.call("status"))["errMsg"] == "status:ok"  # no stray answers


async def test_with_acks_an_app_that_dies_before_acking_did_not_hold_them(
    client: ApiClient, api: FakeApi
) -> None:
    await client.call("onPushMessage", {"ack": True})
    (listener,) = api.listeners
    listener.deliver({"type": "receive", "data": {"n": 1}}, push_id="m1")
    listener.deliver({"type": "receive", "data": {"n": 2}}, push_id="m2")
    await client.line()
    await client.send_line(wire.encode_ack(["m1"]))
    held = asyncio.ensure_future(listener.held(("m2",)))
    await asyncio.sleep(0.05)
    await client.close()  # killed between its callback and the ack
    assert await asyncio.wait_for(held, WAIT) is False
    assert await listener.held(("m1",)) is True


async def test_a_bad_ack_is_answered_with_the_rule(client: ApiClient) -> None:
    await client.send_line(b'{"method": "ack", "params": {"push_ids": "m1"}}\n')
    answer = await client.answer()
    assert answer.result == {"errMsg": "ack:fail push_ids must be a list of strings"}
    bad = await client.call("onPushMessage", {"ack": "yes"})
    assert bad == {"errMsg": "onPushMessage:fail ack must be a boolean"}


async def test_not_held_when_the_app_closed_before_the_lines_were_written(
    client: ApiClient, api: FakeApi
) -> None:
    await client.call("onPushMessage")
    (listener,) = api.listeners
    # more than any socket buffer takes while the app reads nothing
    big = "x" * 65536
    for n in range(200):
        listener.deliver({"type": "receive", "data": {"n": n, "pad": big}}, push_id=f"m{n}")
    held = asyncio.ensure_future(listener.held())
    await asyncio.sleep(0)
    assert not held.done()
    await client.close()
    assert await asyncio.wait_for(held, WAIT) is False


async def test_a_listener_that_falls_behind_is_disconnected(
    client: ApiClient, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener that never reads fills the socket buffer; the lines queued after that
    pass MAX_QUEUE and the server cuts it. A polite close would write what is queued
    first and wait forever on the very app that does not read."""
    monkeypatch.setattr(localapi, "MAX_QUEUE", 20)
    await client.call("onPushMessage")
    (listener,) = api.listeners
    big = "x" * 65536
    for n in range(400):  # the app reads none of it
        listener.deliver({"type": "receive", "data": {"n": n, "pad": big}}, push_id=f"m{n}")
        await asyncio.sleep(0)  # let the writer hand what it can to the kernel
    await asyncio.wait_for(listener.wait_closed(), WAIT)
    assert listener.closed
    assert await asyncio.wait_for(listener.held(), WAIT) is False


async def test_held_is_false_for_a_line_dropped_by_the_queue_limit(
    client: ApiClient, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the queue limit drops a line, held() must not say every line got there:
    the connection is cut, and what it had not taken waits for the next listener."""
    monkeypatch.setattr(localapi, "MAX_QUEUE", 5)
    await client.call("onPushMessage")
    (listener,) = api.listeners
    # In one go, while the app reads nothing: big lines fill the kernel's buffer, the
    # next ones queue, and one past five queued is dropped.
    big = "x" * 65536
    for n in range(200):
        listener.deliver({"type": "receive", "data": {"n": n, "pad": big}}, push_id=f"m{n}")
    held = await asyncio.wait_for(listener.held(), WAIT)
    assert held is False
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(client.reader.read(1 << 20), WAIT):
            data += chunk
    seen = [json.loads(line)["push_id"] for line in data.split(b"\n")[:-1]]
    assert seen == [f"m{n}" for n in range(len(seen))]  # in order, cut short
    assert len(seen) < 200


# the socket file -------------------------------------------------------------------------


async def test_socket_is_private(server: LocalApiServer) -> None:
    assert stat.S_ISSOCK(server.path.stat().st_mode)
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700


async def test_an_existing_dir_keeps_its_mode(api: FakeApi, sock_path: Path) -> None:
    """issue 10 item 8: only a directory the server created is made 0700; an existing
    one that nobody else can write to is used as it is (the socket itself is 0600)."""
    sock_path.parent.mkdir(mode=0o755)
    sock_path.parent.chmod(0o755)
    srv = LocalApiServer(api, sock_path, status)
    await srv.start()
    try:
        assert stat.S_IMODE(sock_path.parent.stat().st_mode) == 0o755
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
    finally:
        await srv.stop()
    assert not exists(sock_path)  # a server that ran removes its own socket


async def test_a_second_server_refuses_and_leaves_the_running_one_alone(
    server: LocalApiServer, client: ApiClient, api: FakeApi
) -> None:
    second = LocalApiServer(api, server.path, status)
    with pytest.raises(AlreadyRunning):
        await second.start()
    await second.stop()  # never started: must not remove the running server's socket
    assert exists(server.path)
    assert (await client.call("status"))["errMsg"] == "status:ok"
    fresh = await connect(server.path)
    try:
        assert (await fresh.call("getPushClientId"))["cid"] == CID
    finally:
        await fresh.close()


async def test_a_stale_socket_file_is_replaced(api: FakeApi, sock_path: Path) -> None:
    sock_path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock_path))  # a daemon that died without removing its socket
    assert exists(sock_path)
    srv = LocalApiServer(api, sock_path, status)
    await srv.start()
    try:
        c = await connect(sock_path)
        assert (await c.call("status"))["errMsg"] == "status:ok"
        await c.close()
    finally:
        await srv.stop()

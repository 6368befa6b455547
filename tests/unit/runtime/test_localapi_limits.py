"""issue 10 item 17: what one local app can make the daemon hold.

The output waiting for a connection is capped in bytes (a client that sends requests
and never reads their answers is cut, as a slow listener is), and an app has at most
MAX_CHANNELS channels (they are never deleted, so without a cap every getAllChannels
answer and the store grow without end)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from pathlib import Path

import pytest

from tests.unit.runtime.test_localapi import FakeApi, api, sock_path, status
from unipush_bridge.errors import ApiFail
from unipush_bridge.runtime import core, localapi
from unipush_bridge.runtime.core import Core
from unipush_bridge.runtime.localapi import LocalApiServer
from unipush_bridge.runtime.localpush import Channel
from unipush_bridge.wire import local as wire

__all__ = ["api", "sock_path"]  # fixtures used by name


class ManyChannels(FakeApi):
    """An app's 100 channels with the longest ids: a ~6.6 KB getAllChannels answer."""

    def all_channels(self) -> list[Channel]:
        return [Channel(f"{n:03d}" + "c" * 61, "desc") for n in range(100)]


async def test_a_client_that_never_reads_its_answers_is_cut_by_bytes(sock_path: Path) -> None:
    """issue 10 item 17: 3,000 getAllChannels requests, none of the answers read
    (~20 MB, far under the 10,000-line cap): the daemon cuts the connection once about
    MAX_QUEUE_BYTES wait, instead of holding them all."""
    server = LocalApiServer(ManyChannels(), sock_path, status)
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        request = b"".join(
            wire.encode_request(wire.Request(i, "getAllChannels")) for i in range(3000)
        )
        writer.write(request)
        await writer.drain()
        deadline = time.monotonic() + 5
        while server._connections and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert not server._connections, "a client that does not read was never cut"
        got = 0
        try:
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 2):
                got += len(chunk)
        except ConnectionError:
            pass
        # What reached the socket: at most the cap plus the kernel's buffers.
        assert got < localapi.MAX_QUEUE_BYTES + 8 * 1024 * 1024
        assert got < 3000 * 6000  # far from every answer
        writer.close()
    finally:
        await server.stop()


async def test_a_reader_is_not_cut(api: FakeApi, sock_path: Path) -> None:
    """issue 10 item 17: the cap is on falling behind, not on volume: a client that
    reads gets every answer, even far more bytes in all than the cap."""
    server = LocalApiServer(ManyChannels(), sock_path, status)
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        for batch in range(10):
            writer.write(
                b"".join(
                    wire.encode_request(wire.Request(batch * 100 + i, "getAllChannels"))
                    for i in range(100)
                )
            )
            for _ in range(100):
                line = await asyncio.wait_for(reader.readline(), 5)
                assert b"getAllChannels:ok" in line
        writer.close()
    finally:
        await server.stop()


def new_core() -> Core:
    counter = itertools.count()
    return Core(core.Config(), lambda: f"id{next(counter)}")


def test_an_app_has_at_most_max_channels() -> None:
    """issue 10 item 17: setPushChannel past the limit fails naming it; an existing
    id stays a no-op (a channel never changes), and nothing is saved."""
    c = new_core()
    for n in range(core.MAX_CHANNELS):
        created, actions = c.set_push_channel({"channelId": f"ch{n}", "channelDesc": "d"})
        assert created and actions
    with pytest.raises(ApiFail, match=f"too many channels: at most {core.MAX_CHANNELS} per app"):
        c.set_push_channel({"channelId": "one-more", "channelDesc": "d"})
    assert c.set_push_channel({"channelId": "ch0", "channelDesc": "other"}) == (False, [])
    assert len(c.all_channels()) == core.MAX_CHANNELS + 1  # and the default one
    assert "one-more" not in {ch.channel_id for ch in c.all_channels()}


async def test_the_channel_limit_reads_as_uni_fail(sock_path: Path) -> None:
    """issue 10 item 17: over the socket the refusal is setPushChannel:fail <reason>."""

    class Limited(FakeApi):
        def __init__(self) -> None:
            super().__init__()
            self.core = new_core()

        def set_push_channel(self, params: dict[str, object]) -> dict[str, object]:
            created, _ = self.core.set_push_channel(dict(params))
            return {"created": created}

    server = LocalApiServer(Limited(), sock_path, status)
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        for n in range(core.MAX_CHANNELS + 1):
            params = {"channelId": f"c{n}", "channelDesc": "d"}
            writer.write(wire.encode_request(wire.Request(n, "setPushChannel", params)))
            answer = wire.parse_daemon_line(await asyncio.wait_for(reader.readline(), 5))
            assert isinstance(answer, wire.Answer)
        assert answer.result["errMsg"] == (
            f"setPushChannel:fail too many channels: at most {core.MAX_CHANNELS} per app, "
            "and channels are never deleted; reuse one of getAllChannels"
        )
        writer.close()
    finally:
        await server.stop()


async def test_closing_a_listener_that_does_not_read_cuts_it_after_the_grace(
    api: FakeApi, sock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 10 item 19: a stuck listener the daemon disconnects must really go (its
    pending holds then end at once) even though it never takes its queued lines."""
    monkeypatch.setattr(localapi, "CLOSE_GRACE_S", 0.2, raising=False)
    server = LocalApiServer(api, sock_path, status)
    await server.start()
    try:
        app = socket.socket(socket.AF_UNIX)  # reads nothing, ever
        app.setblocking(False)
        app.connect(str(sock_path))
        app.send(wire.encode_request(wire.Request(1, "onPushMessage", {"ack": True})))
        listener = await asyncio.wait_for(api.subscribed.get(), 5)
        big = "x" * 65536
        for n in range(40):  # more than the socket buffers take, under the byte cap
            listener.deliver({"type": "receive", "data": {"pad": big}}, push_id=f"m{n}")
            await asyncio.sleep(0)
        held = asyncio.ensure_future(listener.held(("m0",)))
        listener.close()
        await asyncio.wait_for(listener.wait_closed(), 2)
        assert await asyncio.wait_for(held, 1) is False
        app.close()
    finally:
        await server.stop()

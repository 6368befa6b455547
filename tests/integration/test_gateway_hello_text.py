"""Frames from a daemon with a ``\\ud800`` escape that has no partner (a lone surrogate,
which Python's json takes and no UTF-8 encoder does). A hello holding one in its
appid or secret used to reach the store: the gateway logged the failure at error
level with a traceback and closed with 1011 "gateway store unavailable; reconnect",
which sent an honest client's author looking at the store. It is a broken frame,
answered as the protocol says: a fatal ``bad_frame`` and 4400 before registration,
a non-fatal ``bad_frame`` after it, the link kept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gatewaykit import Kit, running_gateway


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0) as k:
        yield k


@pytest.mark.parametrize(
    "hello",
    [
        '{"type": "hello", "appid": "\\ud800"}',
        '{"type": "hello", "appid": "__UNI__A", "secret": "\\udc00' + "s" * 20 + '"}',
    ],
)
async def test_a_hello_with_a_lone_surrogate_is_a_bad_frame(kit: Kit, hello: str) -> None:
    async with connect(kit.ws_url) as ws:
        await ws.send(hello)
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "bad_frame", error
        assert error["fatal"] is True
        assert error["message"].startswith("frame: a string holds a lone surrogate (U+D"), error
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_a_receipt_with_a_lone_surrogate_is_refused_and_the_link_stays(kit: Kit) -> None:
    async with connect(kit.ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "appid": "__UNI__A", "secret": "s" * 16}))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome"
        await ws.send('{"type": "receipt", "id": "\\ud83d", "taskid": "t", "event": "click"}')
        error = json.loads(await ws.recv())
        assert error["code"] == "bad_frame" and error["fatal"] is False, error
        assert "lone surrogate" in error["message"]
        await ws.send('{"type": "ack", "seq": 0}')  # the session still answers
        assert json.loads(await ws.recv())["code"] == "bad_frame"

"""The gateway's trust in daemons over real websockets on loopback (issue 10 items 1, 2,
13, 14, 15): a cid is bound to its daemon's secret, a cursor is never trusted beyond
what the gateway issued, registrations are limited and expire, receipts count once for
real targets, and out-of-range integers get a bad_frame error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gatewaykit import Kit, running_gateway

MSG = {"title": "T", "content": "C", "payload": {"k": 1}}
APP = "__UNI__A"


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0) as k:
        yield k


async def raw_hello(kit: Kit, **fields: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(kit.ws_url, compression=None)
    await ws.send(json.dumps({"type": "hello", "v": 1, "appid": APP, **fields}))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 5))


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    return info.value.rcvd.code if info.value.rcvd else None


async def push(kit: Kit, cid: str) -> dict[str, str]:
    data = await kit.ok("sendMessage", {**MSG, "push_clientid": cid})
    ((_, per_cid),) = data.items()
    return dict(per_cid)


# item 15 --------------------------------------------------------------------------------


async def test_huge_acked_in_hello_is_a_bad_frame_not_a_500(kit: Kit) -> None:
    """issue 10 item 15: acked of 2**63 reached SQLite and an HTTP 500 was written onto
    the upgraded socket; now it is a fatal bad_frame error and close 4400."""
    ws, frame = await raw_hello(kit, cid="a" * 32, acked=2**63)
    assert frame["type"] == "error" and frame["code"] == "bad_frame" and frame["fatal"]
    assert frame["message"].startswith("hello.acked: must be at most")
    assert await closed_with(ws) == 4400


async def test_huge_ack_seq_is_non_fatal(kit: Kit) -> None:
    """issue 10 item 15: an ack with seq 2**63 after registration gets a non-fatal
    bad_frame and the link keeps working."""
    client = await kit.client()
    await client.ws.send(json.dumps({"type": "ack", "seq": 2**63}))
    frame = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
    assert frame == {
        "type": "error",
        "code": "bad_frame",
        "message": "ack.seq: must be at most 9223372036854775807",
        "fatal": False,
    }
    assert await push(kit, client.cid) == {client.cid: "successed_online"}
    got = await client.next_push()
    await client.ack(got["seq"])

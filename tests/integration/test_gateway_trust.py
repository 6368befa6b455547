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
import structlog.testing
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gatewaykit import Client, Kit, running_gateway
from unipush_bridge.gateway.ratelimit import RateLimiter

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


# item 1: cid ownership ------------------------------------------------------------------

OWNER_SECRET = "owner-" + "0" * 58
THIEF_SECRET = "thief-" + "1" * 58
TOKEN = "app-client-token-0123"


async def daemon(kit: Kit, secret: str | None, cid: str | None = None, acked: int = 0) -> Client:
    """A daemon stand-in that sends its secret in the hello (as the real one does)."""
    fields: dict[str, Any] = {"acked": acked, "token": TOKEN}
    if secret is not None:
        fields["secret"] = secret
    if cid is not None:
        fields["cid"] = cid
    ws, welcome = await raw_hello(kit, **fields)
    assert welcome["type"] == "welcome", welcome
    return Client(ws, welcome["cid"], welcome["acked"])


@pytest.fixture
async def token_kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0, client_token=TOKEN) as k:
        yield k


@pytest.mark.parametrize("thief_secret", [None, THIEF_SECRET])
async def test_a_thief_with_the_token_cannot_take_a_bound_cid(
    token_kit: Kit, thief_secret: str | None
) -> None:
    """issue 10 item 1: a hello with another daemon's cid and the app's client_token
    took the registration over (the owner was closed with 4409), received its pushes and
    by acking deleted them. Now the thief gets a fatal cid_taken and close 4403, and the
    owner keeps its connection, its pushes and its stored messages."""
    kit = token_kit
    owner = await daemon(kit, OWNER_SECRET)
    first = await push(kit, owner.cid)
    assert first == {owner.cid: "successed_online"}
    pending = await owner.next_push()  # received, not acked yet: stays stored

    fields: dict[str, Any] = {"cid": owner.cid, "token": TOKEN, "acked": 0}
    if thief_secret is not None:
        fields["secret"] = thief_secret
    thief, frame = await raw_hello(kit, **fields)
    assert frame["type"] == "error" and frame["code"] == "cid_taken" and frame["fatal"]
    assert frame["message"].startswith("hello.secret: ")
    assert OWNER_SECRET not in frame["message"]
    assert await closed_with(thief) == 4403

    assert await kit.gateway.store.pending_count(APP, owner.cid) == 1  # nothing acked away
    assert await push(kit, owner.cid) == {owner.cid: "successed_online"}
    later = await owner.next_push()
    assert later["seq"] > pending["seq"]
    await owner.ack(later["seq"])
    await owner.ws.close()

    again = await daemon(kit, OWNER_SECRET, cid=owner.cid)  # the owner reconnects fine
    assert again.cid == owner.cid and again.acked == later["seq"]
    await again.no_push()


async def test_a_secret_binds_a_legacy_cid_and_then_guards_it(kit: Kit) -> None:
    """issue 10 item 1: a cid registered without a secret (a daemon from before secrets)
    is accepted and bound by the first hello that brings one; from then on a hello
    without it is refused."""
    legacy = await kit.client()  # no secret
    await legacy.ws.close()
    upgraded = await daemon(kit, OWNER_SECRET, cid=legacy.cid)
    assert upgraded.cid == legacy.cid
    await upgraded.ws.close()
    ws, frame = await raw_hello(kit, cid=legacy.cid)
    assert frame["code"] == "cid_taken"
    assert await closed_with(ws) == 4403


async def test_the_secret_survives_a_gateway_restart(tmp_path: Path) -> None:
    """issue 10 item 1: the binding is in the store, not in memory."""
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        owner = await daemon(kit, OWNER_SECRET)
        await owner.ws.close()
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        ws, frame = await raw_hello(kit, cid=owner.cid, secret=THIEF_SECRET)
        assert frame["code"] == "cid_taken"
        assert await closed_with(ws) == 4403
        again = await daemon(kit, OWNER_SECRET, cid=owner.cid)
        assert again.cid == owner.cid


# item 2: the cursor cap -----------------------------------------------------------------


async def test_a_cursor_past_every_seq_is_reset_and_pushes_still_arrive(tmp_path: Path) -> None:
    """issue 10 item 2: a hello with acked=2**63-1 was stored as the cursor, so every
    later push answered successed_online and never arrived, across restarts too. Now the
    gateway resets it to its own cursor and says so in the welcome."""
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        first = await daemon(kit, OWNER_SECRET)
        assert await push(kit, first.cid) == {first.cid: "successed_online"}
        seq = (await first.next_push())["seq"]
        await first.ack(seq)
        await first.ws.close()
        hostile = await daemon(kit, OWNER_SECRET, cid=first.cid, acked=2**63 - 1)
        assert hostile.acked == seq  # reset to the gateway's own cursor
        assert await push(kit, first.cid) == {first.cid: "successed_online"}
        got = await hostile.next_push()
        assert got["seq"] > seq
        await hostile.ws.close()
        for _ in range(100):
            if first.cid not in await kit.gateway.online(APP, [first.cid]):
                break
            await asyncio.sleep(0.01)
        assert await push(kit, first.cid) == {first.cid: "successed_offline"}
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        again = await daemon(kit, OWNER_SECRET, cid=first.cid, acked=2**63 - 1)
        assert again.acked == seq
        assert [(await again.next_push())["seq"] for _ in range(2)] == sorted(
            [got["seq"], got["seq"] + 1]
        )


async def test_an_ack_past_the_last_issued_seq_is_refused(kit: Kit) -> None:
    """issue 10 item 2: an ack of 2**63-1 moved the cursor past every future seq; now it
    gets a non-fatal bad_frame, deletes nothing, and later pushes arrive."""
    client = await daemon(kit, OWNER_SECRET)
    assert await push(kit, client.cid) == {client.cid: "successed_online"}
    seq = (await client.next_push())["seq"]
    await client.ack(2**63 - 1)
    frame = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
    assert frame == {
        "type": "error",
        "code": "bad_frame",
        "message": f"ack.seq: {2**63 - 1} is past the last seq sent to this cid ({seq})",
        "fatal": False,
    }
    assert await kit.gateway.store.pending_count(APP, client.cid) == 1
    await client.ack(seq)
    assert await push(kit, client.cid) == {client.cid: "successed_online"}
    assert (await client.next_push())["seq"] > seq


# item 13 --------------------------------------------------------------------------------


async def test_new_cids_from_one_address_are_limited(kit: Kit) -> None:
    """issue 10 item 13: 3,000 cids in 4 s were registered; now an address gets a fatal
    too_many_registrations (close 4429) past its budget, and known cids still reconnect."""
    kit.gateway.service.new_cid_rate = RateLimiter(1 / 60, 2, kit.clock)
    first = await kit.client()
    await kit.client()
    ws, frame = await raw_hello(kit)
    assert frame["code"] == "too_many_registrations" and frame["fatal"]
    assert await closed_with(ws) == 4429
    ws, frame = await raw_hello(kit, cid="e" * 32)  # an invented cid is a new one too
    assert frame["code"] == "too_many_registrations"
    again = await kit.client(cid=first.cid)  # a reconnect is not a registration
    assert again.cid == first.cid
    kit.clock.advance(60)
    assert (await kit.client()).cid not in (first.cid,)


# item 14 --------------------------------------------------------------------------------


async def test_receipts_count_once_and_only_from_targets(kit: Kit) -> None:
    """issue 10 item 14: any cid could add to any task's display and click counts, as
    often as it liked; now only the cid a message went to counts, once per kind."""
    target = await daemon(kit, OWNER_SECRET)
    other = await daemon(kit, THIEF_SECRET)
    data = await kit.ok("sendMessage", {**MSG, "push_clientid": target.cid})
    ((taskid, _),) = data.items()
    got = await target.next_push()
    await target.ack(got["seq"])
    for _ in range(3):
        await other.receipt(got, "display")
        await other.receipt(got, "click")
        await target.receipt(got, "display")
        await target.receipt(got, "click")
    await asyncio.sleep(0.2)  # receipts get no answer
    report = await kit.ok("getReport", {"taskid": taskid})
    total = report[taskid]["total"]
    assert (total["display_num"], total["click_num"], total["receive_num"]) == (1, 1, 1)


async def test_a_daemon_flooding_bad_frames_costs_a_few_log_lines(kit: Kit) -> None:
    """Each refused frame (bad JSON, an ack past the last seq issued) logged a warning:
    a registered daemon sending them as fast as its link goes wrote a line each, a
    flood the edge's own refusals are kept from (one line per event per 10 s, with a
    count). Every frame is still answered."""
    client = await kit.client()
    with structlog.testing.capture_logs() as logs:
        for n in range(100):
            await client.ws.send("not json" if n % 2 else json.dumps({"type": "ack", "seq": 5}))
        for _ in range(100):
            frame = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
            assert frame["type"] == "error" and frame["code"] == "bad_frame"
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) <= 4, [w["event"] for w in warnings[:10]]
    assert await push(kit, client.cid) == {client.cid: "successed_online"}

"""The gateway never resends below the acknowledged cursor: a real Gateway on a loopback
port, and websocket clients speaking hello and ack (tests/gatewaykit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.gatewaykit import Client, Kit, running_gateway
from unipush_bridge.gateway.server import Connection

APP = "__UNI__A"


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0) as k:
        yield k


async def send(kit: Kit, cid: str, n: int, ttl: int | None = None) -> None:
    body: dict[str, Any] = {"push_clientid": cid, "title": f"t{n}", "content": "c"}
    body["payload"] = {"n": n}
    if ttl is not None:
        body["settings"] = {"ttl": ttl}
    answer = await kit.gateway.send_message(APP, body)
    assert answer["errCode"] == 0, answer


async def acked(client: Client, seq: int) -> None:
    """Ack ``seq`` and wait until the gateway has handled it: frames are handled in
    order, so the answer to a bad frame sent after the ack means the ack is applied or
    in the gateway's ack window (gateway/acks.py), which a close or a hello of the
    cid applies before anything else."""
    await client.ack(seq)
    await client.ws.send(json.dumps({"type": "ack", "seq": 0}))
    frame = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
    assert frame["type"] == "error" and frame["code"] == "bad_frame", frame


async def leave(kit: Kit, client: Client) -> None:
    await client.ws.close()
    for _ in range(200):
        if client.cid not in await kit.gateway.online(APP, [client.cid]):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the gateway still has the connection")


async def received(client: Client, count: int) -> list[int]:
    return [(await client.next_push())["seq"] for _ in range(count)]


async def test_reconnect_resumes_after_the_acked_cursor_and_never_below(kit: Kit) -> None:
    first = await kit.client()
    cid = first.cid
    for n in range(1, 6):
        await send(kit, cid, n)
    seqs = await received(first, 5)
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    await first.no_push(0.05)  # each sent once on a connection
    await acked(first, seqs[2])
    await leave(kit, first)

    # hello.acked is the third seq: exactly the fourth and fifth come again
    again = await kit.client(cid=cid, acked=seqs[2])
    assert again.acked == seqs[2]
    assert await received(again, 2) == seqs[3:]
    await again.no_push(0.1)
    await leave(kit, again)

    # a stale hello (its daemon lost the last ack) still resumes from the stored cursor
    stale = await kit.client(cid=cid, acked=seqs[0])
    assert stale.acked == seqs[2]  # the cursor never moves backwards
    assert await received(stale, 2) == seqs[3:]
    await stale.no_push(0.1)
    await acked(stale, seqs[4])
    await leave(kit, stale)

    # everything acked: nothing comes after the welcome, a new message comes with a
    # seq beyond the cursor, once
    done = await kit.client(cid=cid, acked=seqs[4])
    assert done.acked == seqs[4]
    await done.no_push(0.1)
    await send(kit, cid, 6)
    (newest,) = await received(done, 1)
    assert newest > seqs[4]
    await done.no_push()


async def test_a_hello_with_no_cursor_resumes_from_the_stored_one(kit: Kit) -> None:
    client = await kit.client()
    for n in range(1, 4):
        await send(kit, client.cid, n)
    seqs = await received(client, 3)
    await acked(client, seqs[1])
    await leave(kit, client)
    fresh_install = await kit.client(cid=client.cid, acked=0)
    assert fresh_install.acked == seqs[1]
    assert await received(fresh_install, 1) == seqs[2:]
    await fresh_install.no_push()


async def test_a_hello_ahead_of_the_gateway_drops_what_it_already_has(kit: Kit) -> None:
    """The daemon committed 1..3 but died before its ack went out: its hello names 3,
    and the gateway must not send those again."""
    client = await kit.client()
    for n in range(1, 5):
        await send(kit, client.cid, n)
    seqs = await received(client, 4)
    await leave(kit, client)  # no ack at all
    back = await kit.client(cid=client.cid, acked=seqs[2])
    assert back.acked == seqs[2]
    assert await received(back, 1) == seqs[3:]
    await back.no_push()


async def test_a_message_committed_while_offline_arrives_once_after_reconnect(kit: Kit) -> None:
    client = await kit.client()
    await send(kit, client.cid, 1)
    (s1,) = await received(client, 1)
    await acked(client, s1)
    await leave(kit, client)

    await send(kit, client.cid, 2)  # stored for later
    back = await kit.client(cid=client.cid, acked=s1)
    push = await back.next_push()
    assert push["seq"] > s1 and push["message"]["payload"] == {"n": 2}
    await back.no_push(0.1)
    await acked(back, push["seq"])
    await leave(kit, back)
    again = await kit.client(cid=client.cid, acked=push["seq"])
    await again.no_push(0.1)


async def test_a_sender_woken_while_live_messages_wait_sends_each_once(kit: Kit) -> None:
    """A kick (rows may be waiting in the store) that lands while a just-committed
    message is also queued for direct hand-over, as happens when messages arrive while
    the gateway is still registering the connection: the store read and the hand-over
    overlap, and each seq must still go out once."""
    client = await kit.client()
    await send(kit, client.cid, 1)
    await received(client, 1)  # the sender has read the backlog: hand-over from now on
    conn = kit.gateway.connections[(APP, client.cid)]
    # send_message does not wait on anything, so these run before the sender does
    await send(kit, client.cid, 2)
    await send(kit, client.cid, 3)
    conn.kick()
    seqs = await received(client, 2)
    assert seqs == sorted(set(seqs))
    await client.no_push()


async def test_two_daemons_each_get_only_their_own_messages(kit: Kit) -> None:
    a = await kit.client()
    b = await kit.client()
    for n in range(3):
        await send(kit, a.cid, n)
        await send(kit, b.cid, n)
    sa, sb = await received(a, 3), await received(b, 3)
    assert not set(sa) & set(sb)  # one sequence for all cids: gaps, no overlap
    await acked(a, sa[-1])
    await leave(kit, a)
    await leave(kit, b)
    a2 = await kit.client(cid=a.cid, acked=0)
    b2 = await kit.client(cid=b.cid, acked=0)
    await a2.no_push(0.1)
    assert await received(b2, 3) == sb


async def test_a_message_sent_while_a_replaced_connection_closes_comes_after_welcome(
    kit: Kit,
) -> None:
    """A daemon reconnecting while its old, half-open connection is still registered
    replaces it; a message committed meanwhile reaches the new connection after its
    welcome (a push before the welcome would be refused by the daemon and then covered
    by its next ack: lost)."""
    old = await kit.client()
    old_conn = kit.gateway.connections[(APP, old.cid)]
    old.ws.transport.pause_reading()  # a half-open daemon: it never answers the close
    new = await connect(kit.ws_url, compression=None)
    try:
        await new.send(json.dumps({"type": "hello", "v": 1, "appid": APP, "cid": old.cid}))
        for _ in range(400):  # no event to await: watch for the new registration
            if kit.gateway.connections[(APP, old.cid)] is not old_conn:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("the new connection never registered")
        await send(kit, old.cid, 1)
        frames: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):  # nothing may come before the welcome
            frames.append(json.loads(await asyncio.wait_for(new.recv(), 0.2)))
        old.ws.transport.resume_reading()  # the old one closes; the welcome follows
        while len(frames) < 2:
            frames.append(json.loads(await asyncio.wait_for(new.recv(), 5)))
        assert [f["type"] for f in frames] == ["welcome", "push"]
    finally:
        await new.close()


async def test_a_message_committed_while_the_hello_awaits_the_store_comes_after_welcome(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hello's last store call (the backlog for its welcome) suspends, as a Redis
    round trip does, with the connection already registered: a push committed then
    must wait for the welcome, not go out first (the daemon refuses a push before its
    welcome, and its next ack covers the refused seq: lost)."""
    old = await kit.client()
    await leave(kit, old)
    store = kit.gateway.store
    pending_count = store.pending_count
    held, release = asyncio.Event(), asyncio.Event()

    async def slow_pending_count(appid: str, cid: str) -> int:
        held.set()
        await release.wait()
        return await pending_count(appid, cid)

    monkeypatch.setattr(store, "pending_count", slow_pending_count)
    new = await connect(kit.ws_url, compression=None)
    try:
        await new.send(json.dumps({"type": "hello", "v": 1, "appid": APP, "cid": old.cid}))
        await asyncio.wait_for(held.wait(), 5)
        assert (APP, old.cid) in kit.gateway.connections  # registered, not welcomed
        await send(kit, old.cid, 1)
        await asyncio.sleep(0.05)  # the sender's turn, if it did not wait
        release.set()
        frames = [json.loads(await asyncio.wait_for(new.recv(), 5)) for _ in range(2)]
        assert [f["type"] for f in frames] == ["welcome", "push"]
        assert frames[1]["message"]["title"] == "t1"
    finally:
        await new.close()


async def test_a_repeated_request_id_pushes_what_its_first_try_committed(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first try that committed but whose push never left (on Redis: the reply to
    its EXEC lost as the server went away, so the node pushed nothing) is answered
    from memory on the retry; the retry makes the connection read the store, so the
    message does not wait for the next push to the cid (a fault run left the last
    message of a stream stuck that way)."""
    client = await kit.client()

    async def lost(self: Connection, before: int, seq: int, msg_id: str, body_json: str) -> None:
        return None

    body = {"push_clientid": client.cid, "title": "once", "content": "c", "payload": {}}
    body["request_id"] = "req-0000000042"
    monkeypatch.setattr(Connection, "offer_now", lost)
    first = await kit.gateway.send_message(APP, body)
    await client.no_push()
    monkeypatch.undo()
    assert await kit.gateway.send_message(APP, body) == first
    push = await client.next_push()
    assert push["message"]["title"] == "once"
    await client.no_push()

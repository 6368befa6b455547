"""A daemon that stops reading its websocket (hostile, or a laptop whose network went
quiet with the TCP link still up) must hold up nobody but itself: not the sendMessage
answer of a push that names it with others, not the other daemons of a broadcast, not
pushes to other cids. Its messages wait in the store and in its socket's buffers and
reach it, once each and in order, when it reads again. A real Gateway on loopback
(tests/gatewaykit.py), both stores."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.gatewaykit import Client, Kit, running_gateway
from unipush_bridge.gateway.server import CLOSE_WAIT_S

APP = "__UNI__A"
FILLER = "x" * 700
#: Pushes naming the stuck daemon after its link is full.
ROUNDS = 20


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0, broadcast_per_minute=0) as k:
        yield k


def push(cids: list[str], title: str, payload: Any = None) -> dict[str, Any]:
    return {"push_clientid": cids, "title": title, "content": "c", "payload": payload or {}}


async def fill_link(kit: Kit, slow: Client) -> int:
    """Pause the daemon's reading and push to it until the gateway's side of its link
    is full (an answer that took long, or the write buffer paused); the pushes made."""
    conn = kit.gateway.connections[(APP, slow.cid)]
    # Small kernel buffers on both ends: the link fills after tens of pushes, not
    # thousands (the behaviour is the same, the test is quicker).
    conn.ws.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    slow.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.ws.transport.pause_reading()
    n = 0
    while n < 20_000:
        started = time.monotonic()
        answer = await asyncio.wait_for(
            kit.ok("sendMessage", push([slow.cid], f"f{n}", FILLER)), 30
        )
        n += 1
        assert answer
        if time.monotonic() - started > 1.0 or conn.paused():
            return n
    raise AssertionError("the gateway's write side never filled")


async def test_a_daemon_that_stops_reading_holds_up_nobody_else(kit: Kit) -> None:
    slow = await kit.client()
    others = [await kit.client() for _ in range(3)]
    filled = await fill_link(kit, slow)
    # Pushes naming the stuck daemon first, then the others; broadcasts.
    slowest = {"named": 0.0, "broadcast": 0.0}
    for n in range(ROUNDS):
        for kind, body in (
            ("named", push([slow.cid] + [o.cid for o in others], f"all{n}")),
            ("broadcast", {"title": f"b{n}", "content": "c", "payload": {}}),
        ):
            started = time.monotonic()
            await asyncio.wait_for(kit.ok("sendMessage", body), 5)
            slowest[kind] = max(slowest[kind], time.monotonic() - started)
            for o in others:
                assert (await o.next_push(timeout=2))["message"]["title"] == body["title"]
    print(f"{filled} pushes filled the link; slowest answers then: {slowest}")
    assert max(slowest.values()) < 1.0, slowest
    # It reads again: everything, once each, in order.
    slow.ws.transport.resume_reading()
    titles: list[str] = []
    seqs: list[int] = []
    while len(titles) < filled + 2 * ROUNDS:
        frame = await slow.next_push(timeout=10)
        titles.append(frame["message"]["title"])
        seqs.append(frame["seq"])
        await slow.ack(frame["seq"])
    rounds = [title for n in range(ROUNDS) for title in (f"all{n}", f"b{n}")]
    assert titles == [f"f{n}" for n in range(filled)] + rounds
    assert seqs == sorted(set(seqs))
    await slow.no_push()


async def test_a_daemon_back_on_a_new_link_is_not_held_up_by_its_stuck_old_one(
    kit: Kit,
) -> None:
    """A laptop that changed networks says hello on a new link while the gateway still
    holds the old one, full (nothing reads it any more). Replacing it waited for its
    close handshake, whose close frame could not even be written: the new link never
    got its welcome. The close now waits CLOSE_WAIT_S and then cuts the old link."""
    old = await kit.client()
    await fill_link(kit, old)
    started = time.monotonic()
    new = await kit.client(cid=old.cid)  # asserts the welcome
    took = time.monotonic() - started
    assert took < CLOSE_WAIT_S + 1.0, took
    assert kit.gateway.connections[(APP, old.cid)].ws is not None
    await kit.ok("sendMessage", push([old.cid], "on the new link"))
    titles = []
    while "on the new link" not in titles:
        frame = await new.next_push(timeout=5)
        titles.append(frame["message"]["title"])
        await new.ack(frame["seq"])
    assert titles[-1] == "on the new link" and len(titles) == len(set(titles))


async def test_a_stop_with_stuck_daemons_takes_one_close_wait_not_one_each(
    tmp_path: Path,
) -> None:
    """The gateway's stop closed its links one after the other, each waiting for its
    handshake: three stuck daemons held a stop for three close waits."""
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        for _ in range(3):
            await fill_link(kit, await kit.client())
        started = time.monotonic()
    took = time.monotonic() - started
    assert took < CLOSE_WAIT_S + 1.5, took


async def test_a_hand_over_that_fails_after_the_commit_still_answers_success(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks while a committed push is handed over (a bug, a library error)
    must not answer the push as failed (its sender would retry and store it again), nor
    cost the push's other targets theirs: that daemon's link is cut, and it resumes from
    its cursor on its next hello."""
    broken = await kit.client()
    fine = await kit.client()
    conn = kit.gateway.connections[(APP, broken.cid)]

    def boom(data: bytes) -> None:
        raise RuntimeError("a writer that failed")

    # The hand-over writes the turn's frames to the link itself (server.Outbox).
    assert conn._link is not None and conn._link.transport is not None
    monkeypatch.setattr(conn._link.transport, "write", boom)
    data = await kit.ok("sendMessage", push([broken.cid, fine.cid], "once"))
    ((_taskid, statuses),) = data.items()
    assert statuses == {broken.cid: "successed_online", fine.cid: "successed_online"}
    assert (await fine.next_push(timeout=2))["message"]["title"] == "once"
    with pytest.raises(ConnectionClosed):
        await broken.next_push(timeout=2)
    back = await kit.client(cid=broken.cid)
    assert (await back.next_push(timeout=2))["message"]["title"] == "once"
    await back.no_push()


async def test_daemons_that_fill_their_links_as_a_push_reaches_them_cost_it_four_waits(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile fleet of daemons, each reading just enough that its link fills as the
    push is written to it, cost the push a drain wait each: sixteen of them held its
    answer 16 x 50 ms. Now a push waits MAX_DRAIN_WAITS times at most; the rest of its
    daemons get it by their senders, and everyone gets it once."""
    from unipush_bridge.gateway import server

    slow = [await kit.client() for _ in range(16)]
    fine = await kit.client()
    for daemon in slow:
        conn = kit.gateway.connections[(APP, daemon.cid)]
        real = conn._push

        async def write_then_stall(seq: int, msg_id: str, body: str, real: Any = real) -> bool:
            sent = await real(seq, msg_id, body)  # the frame is written, then
            await asyncio.sleep(0.5)  # the link's drain takes long
            return bool(sent)

        monkeypatch.setattr(conn, "_push", write_then_stall)
    started = time.monotonic()
    await kit.ok("sendMessage", push([d.cid for d in slow] + [fine.cid], "all"))
    took = time.monotonic() - started
    assert server.MAX_DRAIN_WAITS * server.DIRECT_DRAIN_S <= 0.2
    assert took < 0.5, took  # sixteen waits: 0.8 s
    for daemon in (*slow, fine):
        assert (await daemon.next_push(timeout=3))["message"]["title"] == "all"
        await daemon.no_push(0.05)

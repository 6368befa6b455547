"""issue 17 (follow-up) item 1: what a cluster must answer as one node does. Real
gateway nodes on loopback websockets and one private redis-server (tests/redisstack.py).

(a) successed_online is decided for the service, not per node: a presence key in
    Redis, set by the node that holds the cid's connection;
(b) two nodes adding messages for one cid at once: each message gets its seq in the
    commit that stores it, so no seq repeats and none lands behind a cursor;
(c) a cid registered on two nodes at once resolves to the newest registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.gatewaykit import Kit
from tests.integration.test_cluster import two_nodes
from tests.integration.test_slow_daemon import fill_link
from tests.redisstack import RedisServer, command_calls, redis_server
from unipush_bridge.gateway.redisstore import RedisStore

__all__ = ["redis_server"]

APP = "__UNI__A"


def push(cid: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"push_clientid": [cid], "title": title, "content": "c", "payload": {}, **extra}


def status(data: dict[str, Any], cid: str) -> str:
    ((_taskid, statuses),) = data.items()
    return str(statuses[cid])


async def test_a_cid_online_on_another_node_is_answered_successed_online(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 1a: node A answers for a daemon held by node B as one node would:
    successed_online while it is connected, an online-only push (ttl -1) is delivered,
    and successed_offline once it has gone."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        data = await a.ok("sendMessage", push(daemon.cid, "one"))
        assert status(data, daemon.cid) == "successed_online"
        assert (await daemon.next_push(timeout=2))["message"]["title"] == "one"
        data = await a.ok("sendMessage", push(daemon.cid, "now", settings={"ttl": -1}))
        assert status(data, daemon.cid) == "successed_online"
        assert (await daemon.next_push(timeout=2))["message"]["title"] == "now"
        await daemon.ws.close()
        for _ in range(100):
            if daemon.cid not in await a.gateway.online(APP, [daemon.cid]):
                break
            await asyncio.sleep(0.01)
        data = await a.ok("sendMessage", push(daemon.cid, "later"))
        assert status(data, daemon.cid) == "successed_offline"


async def test_two_nodes_adding_for_one_cid_at_once_neither_repeat_nor_reorder(
    redis_server: RedisServer,
) -> None:
    """issue 17 item 1b: node A's transaction takes its seq while node B commits a
    message for the same cid, which the daemon gets and acks; A's message must still
    come after B's cursor (a seq taken before the commit put it behind, unread)."""
    a = RedisStore(redis_server.url, lambda: 1_000.0)
    b = RedisStore(redis_server.url, lambda: 1_000.0)
    try:
        cid = "c" * 32
        await a.register(APP, cid, 0)
        async with a.transaction():
            await a.add_message(APP, cid, "from-a", "task-a", {"title": "a"}, 600)
            seq_b = await b.add_message(APP, cid, "from-b", "task-b", {"title": "b"}, 600)
            assert [m for _, m, _ in await b.after(APP, cid, 0)] == ["from-b"]
            await b.ack(APP, cid, seq_b)  # the daemon on node B got it and acked
        rows = await b.after(APP, cid, seq_b)
        assert [m for _, m, _ in rows] == ["from-a"], "A's message is behind B's cursor"
        assert rows[0][0] > seq_b
    finally:
        await a.close()
        await b.close()


async def hello(kit: Kit, cid: str) -> ClientConnection:
    ws = await connect(kit.ws_url, compression=None)
    await ws.send(json.dumps({"type": "hello", "v": 1, "appid": APP, "cid": cid, "acked": 0}))
    return ws


async def frames_until_closed(ws: ClientConnection, wait: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(Exception):
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), wait)))
    return frames


async def test_a_cid_registered_on_two_nodes_at_once_keeps_one_connection(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 1c: both hellos are committed before either node hears of the
    other's: the newest registration stays (each node closed its own on the other's
    notice, leaving the cid with no connection at all)."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        cid = (await a.client()).cid
        await asyncio.sleep(0.1)
        for _round in range(3):
            on_a, on_b = await asyncio.gather(hello(a, cid), hello(b, cid))
            got_a, got_b = await asyncio.gather(
                frames_until_closed(on_a, 0.5), frames_until_closed(on_b, 0.5)
            )
            assert got_a[0]["type"] == got_b[0]["type"] == "welcome"
            closed = [ws.close_code for ws in (on_a, on_b) if ws.close_code is not None]
            assert closed == [4409], f"one connection must stay open, closed: {closed}"
            survivor = on_b if on_a.close_code else on_a
            data = await a.ok("sendMessage", push(cid, f"to-survivor-{_round}"))
            assert status(data, cid) == "successed_online"
            frame = json.loads(await asyncio.wait_for(survivor.recv(), 2))
            assert frame["message"]["title"] == f"to-survivor-{_round}"
            await survivor.send(json.dumps({"type": "ack", "seq": frame["seq"]}))
            await survivor.close()
            await asyncio.sleep(0.1)


async def test_a_push_on_this_node_does_not_overtake_another_nodes_earlier_one(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """issue 17 item 1b: node A commits a message for a daemon on node B, and node B
    commits the next one before it hears of A's: B must not hand its own over first
    (its cursor would pass A's message, which the daemon's ack then removes unread)."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        await a.gateway.send_message(APP, push(daemon.cid, "first"))  # no await yields:
        await b.gateway.send_message(APP, push(daemon.cid, "second"))  # B has not heard
        first = await daemon.next_push(timeout=2)
        second = await daemon.next_push(timeout=2)
        assert [first["message"]["title"], second["message"]["title"]] == ["first", "second"]
        assert first["seq"] < second["seq"]
        await daemon.no_push()


async def test_presence_is_renewed_on_a_redis_that_lost_its_scripts(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A restarted Redis has no Lua scripts: the presence renewal loaded none and
    failed with NoScriptError on every round (a fault run caught it), so the daemons a
    node held read as offline on the other nodes once their keys ran out."""
    import redis

    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        assert daemon.cid in await a.gateway.online(APP, [daemon.cid])
        with redis.Redis.from_url(redis_server.url) as r:
            r.script_flush()  # what a restart leaves
            for key in r.scan_iter(match="*on:*"):
                r.delete(key)  # and the presence key's ttl ran out
        assert daemon.cid not in await a.gateway.online(APP, [daemon.cid])
        store = b.gateway.store
        assert isinstance(store, RedisStore)
        await store.renew_presence(list(b.gateway.connections))
        assert daemon.cid in await a.gateway.online(APP, [daemon.cid])


class Reads:
    """Counts a store's after_raw calls (the store read a notice should spare)."""

    def __init__(self, store: Any) -> None:
        self.calls = 0
        self._inner = store.after_raw
        store.after_raw = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._inner(*args, **kwargs)


async def test_a_short_push_from_another_node_is_sent_without_a_store_read(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The notice carries id, body and the seq before it: node B hands the message
    over as node A committed it (a broadcast to 20,000 read each cid's row back)."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        await daemon.no_push(0.1)  # the registration's backlog read is over
        reads = Reads(b.gateway.store)
        for title in ("one", "two", "three"):
            await a.ok("sendMessage", push(daemon.cid, title))
        got = [(await daemon.next_push(timeout=2))["message"]["title"] for _ in range(3)]
        assert got == ["one", "two", "three"]
        assert reads.calls == 0


async def test_a_long_push_from_another_node_is_read_from_the_store(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Past NOTICE_BODY_MAX the body stays out of the notice (Redis' pub/sub buffer
    limit), and node B reads it: it arrives whole all the same. (uni's own limits keep
    a body under it: this needs strict_limits = false.)"""
    from tests.gatewaykit import running_gateway
    from unipush_bridge.gateway.redisstore import NOTICE_BODY_MAX

    relaxed = {"store": redis_server.url, "strict_limits": False}
    async with (
        running_gateway(tmp_path / "a", **relaxed) as a,
        running_gateway(tmp_path / "b", **relaxed) as b,
    ):
        daemon = await b.client()
        await daemon.no_push(0.1)
        reads = Reads(b.gateway.store)
        text = "x" * NOTICE_BODY_MAX
        await a.ok("sendMessage", push(daemon.cid, "long", payload={"text": text}))
        frame = await daemon.next_push(timeout=2)
        assert frame["message"]["payload"] == {"text": text}
        assert reads.calls >= 1


async def test_a_push_notice_goes_only_to_the_node_that_holds_the_cid(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Three nodes, the daemon on B, pushes through A: C parses none of them, and A
    publishes none to itself."""
    from tests.gatewaykit import running_gateway

    async with (
        two_nodes(tmp_path, redis_server) as (a, b),
        running_gateway(tmp_path / "c", store=redis_server.url) as c,
    ):
        heard: dict[str, list[str]] = {"a": [], "b": [], "c": []}
        for name, kit in (("a", a), ("b", b), ("c", c)):
            link = kit.gateway._cluster
            assert link is not None
            inner = link._on

            async def on(note: dict[str, Any], name: str = name, inner: Any = inner) -> None:
                if "kind" in note:  # not the node's own beat (every 5 s, no kind)
                    heard[name].append(note["kind"])
                await inner(note)

            link._on = on  # type: ignore[method-assign]
        daemon = await b.client()
        await daemon.no_push(0.1)
        for notes in heard.values():
            notes.clear()  # the registration's "took" reached every node
        for title in ("one", "two"):
            await a.ok("sendMessage", push(daemon.cid, title))
        for _ in range(2):
            await daemon.next_push(timeout=2)
        await asyncio.sleep(0.1)
        assert heard == {"a": [], "b": ["pushes", "pushes"], "c": []}


async def test_a_broadcast_is_one_notice_per_node_not_one_per_daemon(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A broadcast through A to three daemons on B and one on A: B parses one notice
    naming its three (with the body once), and each daemon gets the message once."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        link = b.gateway._cluster
        assert link is not None
        heard: list[dict[str, Any]] = []
        inner = link._on

        async def on(note: dict[str, Any]) -> None:
            if "kind" in note:  # not B's own beat (every 5 s, no kind)
                heard.append(note)
            await inner(note)

        link._on = on  # type: ignore[method-assign]
        on_b = [await b.client() for _ in range(3)]
        on_a = await a.client()
        await asyncio.sleep(0.1)
        heard.clear()  # the registrations' "took"
        await a.ok("sendMessage", {"title": "all", "content": "c", "payload": {}})
        for daemon in (*on_b, on_a):
            assert (await daemon.next_push(timeout=2))["message"]["title"] == "all"
            await daemon.no_push(0.1)
        assert [n["kind"] for n in heard] == ["pushes"]
        assert sorted(item[0] for item in heard[0]["items"]) == sorted(d.cid for d in on_b)
        assert json.loads(heard[0]["body"])["title"] == "all"


async def test_a_single_push_notice_from_an_older_node_is_still_delivered(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """During a rolling upgrade a node of the previous version publishes one ``push``
    notice per message: the newer node hands it over as before."""
    import redis

    async with two_nodes(tmp_path, redis_server) as (_a, b):
        daemon = await b.client()
        await daemon.no_push(0.1)
        store = RedisStore(redis_server.url, time.time)  # no node: it publishes nothing
        try:
            body = {"title": "old"}
            seq = await store.add_message(APP, daemon.cid, "f" * 32, "RASL_x", body, 600)
        finally:
            await store.close()
        await daemon.no_push(0.1)
        link = b.gateway._cluster
        assert link is not None
        note = {"kind": "push", "node": "old-node", "appid": APP, "cid": daemon.cid}
        note |= {"seq": seq, "id": "f" * 32, "before": seq - 1}
        note["body"] = json.dumps({"title": "old"})
        with redis.Redis.from_url(redis_server.url) as r:
            r.publish(f"{link.channel}:{link.node}", json.dumps(note))
        frame = await daemon.next_push(timeout=2)
        assert (frame["seq"], frame["message"]["title"]) == (seq, "old")
        await daemon.no_push(0.2)


async def test_a_push_while_no_presence_names_the_cid_still_reaches_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A Redis that restarted without its data has no presence keys until the nodes
    renew them: the notice then goes to every node, and the one holding the cid sends
    it (with presence-only notices it would wait for the daemon's next push)."""
    import redis

    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        await daemon.no_push(0.1)
        with redis.Redis.from_url(redis_server.url) as r:
            for key in r.scan_iter(match="*on:*"):
                r.delete(key)
        data = await a.ok("sendMessage", push(daemon.cid, "orphan"))
        assert status(data, daemon.cid) == "successed_offline"  # as far as A can tell
        assert (await daemon.next_push(timeout=2))["message"]["title"] == "orphan"


async def test_a_daemon_back_on_the_node_while_its_old_presence_is_dropped_stays_online(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon's link closes and it says hello to the same node again while the
    close's presence delete is on its way to Redis: the delete landed after the new
    registration's claim and took its presence (node B answered successed_offline and
    dropped an online-only push for a connected daemon), and its registration number
    (a newer 'took' elsewhere was compared with 0)."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        first = await a.client()
        store = a.gateway.store
        assert isinstance(store, RedisStore)
        leave = store.leave
        leaving, release = asyncio.Event(), asyncio.Event()

        async def slow_leave(appid: str, cid: str) -> None:
            leaving.set()
            await release.wait()
            await leave(appid, cid)

        monkeypatch.setattr(store, "leave", slow_leave)
        await first.ws.close()
        await asyncio.wait_for(leaving.wait(), 5)
        again = await a.client(cid=first.cid)  # registered and welcomed on A again
        reg = store.regs[(APP, first.cid)]
        release.set()
        await asyncio.sleep(0.2)  # the delete lands, and what follows it
        assert store.regs.get((APP, first.cid)) == reg
        data = await b.ok("sendMessage", push(first.cid, "now", settings={"ttl": -1}))
        assert status(data, first.cid) == "successed_online"
        assert (await again.next_push(timeout=2))["message"]["title"] == "now"


async def test_a_half_open_connection_replaced_from_another_node_holds_up_no_notice(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Node A closes its connection of a cid that registered on node B ('took'). That
    close waits for a daemon that no longer answers (its close handshake times out):
    the notices behind it, pushes from B for A's other daemons, waited with it. A
    hostile daemon could stall a node's cross-node deliveries for good, by
    registering its cid on the other node every few seconds."""
    async with two_nodes(tmp_path, redis_server) as (a, b):
        stuck = await a.client()
        other = await a.client()
        await fill_link(a, stuck)  # it stopped reading: even its close frame waits
        newer = await b.client(cid=stuck.cid)  # A hears 'took' and closes its own
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        data = await b.ok("sendMessage", push(other.cid, "meanwhile"))
        assert status(data, other.cid) == "successed_online"
        assert (await other.next_push(timeout=2))["message"]["title"] == "meanwhile"
        assert asyncio.get_running_loop().time() - started < 1.0
        # Both links are full of the filler (newer resumed from cursor 0 and reads
        # nothing): a close handshake would wait for it. Cut them.
        for client in (newer, stuck):
            client.ws.transport.abort()


async def test_a_dead_nodes_cids_go_offline_when_its_liveness_key_ends(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A cid is online while its presence names a node that is alive: node B stops
    renewing (it died) and its liveness key runs out; A then answers its daemon
    offline, though the cid's own presence key still names B for up to an hour."""
    import redis

    from unipush_bridge.gateway.redisstore import HOLD_TTL_S

    async with two_nodes(tmp_path, redis_server) as (a, b):
        daemon = await b.client()
        assert daemon.cid in await a.gateway.online(APP, [daemon.cid])
        link = b.gateway._cluster
        assert link is not None and link._renew is not None
        link._renew.cancel()
        with redis.Redis.from_url(redis_server.url) as r:
            presence = f"up:on:{APP}:{daemon.cid}"
            assert HOLD_TTL_S - 5 < int(r.ttl(presence)) <= HOLD_TTL_S
            r.delete(f"up:node:{link.node}")  # what its ttl does 15 s after the death
            assert r.get(presence) == link.node.encode()
        assert daemon.cid not in await a.gateway.online(APP, [daemon.cid])
        data = await a.ok("sendMessage", push(daemon.cid, "later"))
        assert status(data, daemon.cid) == "successed_offline"


async def test_a_renewal_round_is_one_command_not_one_per_daemon(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node renewed every cid's presence key every 5 s (a GET and a SET per
    connected desktop). Now a round is one SET of the node's liveness key (with the
    store's epoch on the same round trip), and the
    cids' keys are renewed every third of HOLD_TTL_S (time scaled down: a round every
    third of a second; the cids' keys every 10 s, then at every round)."""
    import redis

    from unipush_bridge.gateway import redisstore

    monkeypatch.setattr(redisstore, "PRESENCE_TTL_S", 1)
    for hold_s, cid_renewals in ((30, False), (1, True)):
        monkeypatch.setattr(redisstore, "HOLD_TTL_S", hold_s)
        async with two_nodes(tmp_path / str(hold_s), redis_server) as (a, b):
            daemons = [await b.client() for _ in range(5)]
            with redis.Redis.from_url(redis_server.url) as r:
                r.config_resetstat()
                await asyncio.sleep(1.0)  # about three rounds of each node
                seen = command_calls(r)
            if cid_renewals:  # the script's GET and SET per cid, every round
                assert seen.get("eval", 0) >= 2 and seen.get("get", 0) >= 10, seen
            else:  # per round and node one pipeline: the liveness and epoch SETs
                assert 4 <= seen.get("set", 0) <= 20 and "eval" not in seen, seen
            cids = [d.cid for d in daemons]
            assert set(cids) <= await a.gateway.online(APP, cids)


async def test_a_daemon_on_a_node_of_an_earlier_version_is_still_online(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """During a rolling upgrade a node of the earlier version keeps no liveness key;
    it renews its cids' presence keys with a 15 s ttl instead: those count as online
    (an online-only push to its daemon is not dropped as offline)."""
    import redis

    async with two_nodes(tmp_path, redis_server) as (a, _b):
        held = "e" * 32
        await a.gateway.store.register(APP, held, 0)
        with redis.Redis.from_url(redis_server.url) as r:
            r.set(f"up:on:{APP}:{held}", "old-node", ex=15)
            assert held in await a.gateway.online(APP, [held])
            r.set(f"up:on:{APP}:{held}", "dead-new-node", ex=3600)
            assert held not in await a.gateway.online(APP, [held])


async def test_a_stuck_daemon_on_the_other_node_holds_up_none_of_its_neighbours(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Node B hands a notice's messages over in one task: a daemon there that stopped
    reading (its link full) must hold up neither the other daemons of the same notice
    nor later notices, and gets everything once, in order, when it reads again."""
    import socket

    filler = "x" * 700
    async with two_nodes(tmp_path, redis_server) as (a, b):
        slow = await b.client()
        others = [await b.client() for _ in range(3)]
        conn = b.gateway.connections[(APP, slow.cid)]
        conn.ws.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock = slow.ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.ws.transport.pause_reading()
        filled = 0
        while not conn.paused():
            assert filled < 5000, "B's side of the link never filled"
            await a.ok("sendMessage", push(slow.cid, f"f{filled}", payload={"x": filler}))
            filled += 1
            await asyncio.sleep(0.002)
        titles = []
        for n in range(10):
            # one notice to B for the four of them, the stuck one first
            body = push(slow.cid, f"all{n}")
            body["push_clientid"] += [o.cid for o in others]
            await a.ok("sendMessage", body)
            titles.append(body["title"])
            for o in others:
                frame = await o.next_push(timeout=1)
                assert frame["message"]["title"] == body["title"]
        slow.ws.transport.resume_reading()
        got: list[str] = []
        seqs: list[int] = []
        while len(got) < filled + len(titles):
            frame = await slow.next_push(timeout=10)
            got.append(frame["message"]["title"])
            seqs.append(frame["seq"])
            await slow.ack(frame["seq"])
        assert got == [f"f{n}" for n in range(filled)] + titles
        assert seqs == sorted(set(seqs))
        await slow.no_push(0.2)

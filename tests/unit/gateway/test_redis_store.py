"""issue 17 item 1: what only the Redis store has to show (the rest of its behaviour is
the whole gateway suite, which runs against it too: tests/redisstack.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.gatewaykit import Clock
from tests.redisstack import RedisServer, command_calls, redis_server
from unipush_bridge.errors import ConfigError
from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.errors import ILLEGAL, UniError
from unipush_bridge.gateway.redisstore import CLAIM_TTL_S, CLAIMED, RedisStore
from unipush_bridge.gateway.service import GatewayService
from unipush_bridge.gateway.session import Close, Register
from unipush_bridge.gateway.store import ClientRecord, secret_hash
from unipush_bridge.gateway.storeapi import open_store
from unipush_bridge.wire.gateway import CloseCode

__all__ = ["redis_server"]

APP = "__UNI__A"
CID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000.0)


@pytest.fixture
async def rs(shared_redis: RedisServer, clock: Clock) -> AsyncIterator[RedisStore]:
    shared_redis.flush()
    store = RedisStore(shared_redis.url, clock)
    yield store
    await store.close()


async def test_a_failed_transaction_writes_nothing(rs: RedisStore) -> None:
    """issue 17 item 1: one SQLite transaction is one MULTI: an exception inside (a
    sendMessage that fails half-way) leaves no message, task or answer behind."""
    await rs.register(APP, CID, 0)
    with pytest.raises(RuntimeError):
        async with rs.transaction():
            await rs.add_message(APP, CID, "m1", "task", {"title": "t"}, 60)
            await rs.add_task(APP, "task", None, 1, 1)
            await rs.remember_answer(APP, "req-1", {"errCode": 0})
            raise RuntimeError("half-way")
    assert await rs.after(APP, CID, 0) == []
    assert await rs.report(APP, "taskid=?", ("task",)) is None
    assert await rs.answer_for(APP, "req-1") is None
    client = await rs.client(APP, CID)
    assert client is not None and client.issued == 0
    async with rs.transaction():
        seq = await rs.add_message(APP, CID, "m2", "task", {"title": "t"}, 60)
    assert [s for s, _, _ in await rs.after(APP, CID, 0)] == [rs.committed(seq)[0]]


async def test_messages_and_answers_carry_redis_own_expiry(
    rs: RedisStore, shared_redis: RedisServer
) -> None:
    """issue 17 item 1: a cid's queue lives as long as its newest message's ttl, a
    request_id answer for three days: Redis drops them even if no gateway purges."""
    await rs.register(APP, CID, 0)
    await rs.add_message(APP, CID, "m1", "task", {"title": "t"}, 60)
    await rs.add_message(APP, CID, "m2", "task", {"title": "t"}, 600)
    await rs.add_message(APP, CID, "m3", "task", {"title": "t"}, 30)
    await rs.remember_answer(APP, "req-1", {"errCode": 0})
    with redis.Redis.from_url(shared_redis.url) as r:
        for key in (f"up:m:{APP}:{CID}", f"up:b:{APP}:{CID}"):
            assert 590 <= int(r.ttl(key)) <= 600
        assert int(r.ttl(f"up:r:{APP}:req-1")) > 86_400
        assert int(r.ttl(f"up:c:{APP}:{CID}")) == -1  # a cid goes by the unseen purge


def test_store_setting_names_the_field_and_the_rule(tmp_path: object) -> None:
    """issue 17 item 1: a store that is not a Redis URL is refused naming `store`."""
    with pytest.raises(ConfigError, match=r"^store: 'mysql://x' is not a Redis URL"):
        GatewayConfig(store="mysql://x").check()


def test_an_unreachable_redis_names_the_setting(tmp_path: object) -> None:
    """issue 17 item 1: a gateway pointed at no Redis stops at start, naming `store`."""
    config = GatewayConfig(store="unix:///nonexistent/redis.sock")
    with pytest.raises(ConfigError, match=r"^store: cannot reach Redis at"):
        open_store(config, lambda: 0.0)


async def test_a_send_is_one_multi_with_no_script_checks_and_one_script_per_body(
    rs: RedisStore, shared_redis: RedisServer
) -> None:
    """issue 17 item 5: redis-py sent SCRIPT EXISTS before every pipeline holding an
    EVALSHA (a round trip per sendMessage), and a broadcast made one script call per
    cid. Now the scripts go by EVAL inside the MULTI, and a transaction's messages with
    one body are one call: a broadcast's 3,000 cost one."""
    cids = [f"{n:032x}" for n in range(3000)]
    for cid in cids:
        await rs.register(APP, cid, 0)
    with redis.Redis.from_url(shared_redis.url) as r:
        r.script_flush()  # what a restarted Redis leaves: EVAL does not care
        r.config_resetstat()
        async with rs.transaction():
            seqs = [await rs.add_message(APP, cid, f"m{cid}", "task", "{}", 60) for cid in cids]
            await rs.add_task(APP, "task", None, len(cids), len(cids))
        seen = command_calls(r)
    assert "script|exists" not in seen and "script" not in seen and "evalsha" not in seen
    assert seen["eval"] == 1 and seen["exec"] == 1
    numbered = sorted(rs.committed(s)[0] for s in seqs)
    assert numbered == list(range(numbered[0], numbered[0] + len(cids)))
    assert [s for s, _, _ in await rs.after(APP, cids[-1], 0)] == [numbered[-1]]


async def test_a_broadcast_publishes_one_notice_per_node_and_counts_acks_per_task(
    rs: RedisStore, shared_redis: RedisServer
) -> None:
    """A broadcast's add and its acks, per cid, once cost a PUBLISH (with the body), a
    seq INCR and a task counter update each: now one PUBLISH per node holding cids, one
    INCRBY, and one HINCRBY per task for a window of acks."""
    rs.node = "node-a"
    cids = [f"{n:032x}" for n in range(1000)]
    for cid in cids:
        await rs.register(APP, cid, 0)
    with redis.Redis.from_url(shared_redis.url) as r:
        for n, cid in enumerate(cids):  # held by node B and node C, and by A itself
            r.set(f"up:on:{APP}:{cid}", ("node-b", "node-c", "node-a")[n % 3], ex=60)
        r.config_resetstat()
        async with rs.transaction():
            seqs = [await rs.add_message(APP, cid, f"m{cid}", "task", "{}", 60) for cid in cids]
            await rs.add_task(APP, "task", None, len(cids), len(cids))
        seen = command_calls(r)
        assert seen["publish"] == 2 and seen["incrby"] == 1 and "incr" not in seen
        r.config_resetstat()
        acks = [(APP, cid, rs.committed(s)[0]) for cid, s in zip(cids, seqs, strict=True)]
        await rs.ack_many(acks)
        seen = command_calls(r)
        assert seen["hincrby"] == 1
    report = await rs.report(APP, "taskid=?", ("task",))
    assert report is not None and report["receive_num"] == len(cids)


async def test_the_expiry_purge_visits_only_the_cids_with_a_message_due(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """Every node's purge once read every cid with messages (one script call and a
    decode of every body, each minute): now only the cids whose earliest message has
    expired, each moved on to its next expiry, and out of the index once empty."""
    quiet = [f"{n:032x}" for n in range(300)]
    for cid in quiet:
        await rs.add_message(APP, cid, f"q{cid}", "task", {"title": "long"}, 3600)
    await rs.add_message(APP, CID, "short", "task", {"title": "short"}, 10)
    await rs.add_message(APP, CID, "later", "task", {"title": "later"}, 100)
    with redis.Redis.from_url(shared_redis.url) as r:
        clock.now += 50
        r.config_resetstat()
        assert await rs.purge_expired() == 1
        assert command_calls(r)["hgetall"] == 1  # CID alone, not the 300 others
        assert [m for _, m, _ in await rs.after(APP, CID, 0)] == ["later"]
        # its next expiry, "later"'s (on Redis' clock: the store's own plus its skew)
        assert r.zscore("up:due", f"{APP}\n{CID}") == pytest.approx(1_100.0 + rs._skew)
        clock.now += 100
        assert await rs.purge_expired() == 1
        assert r.zscore("up:due", f"{APP}\n{CID}") is None
        assert await rs.purge_expired() == 0
        assert r.zcard("up:due") == len(quiet)


async def test_the_purge_takes_over_the_queued_set_of_earlier_versions(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """A Redis written by an earlier version lists the cids with messages in a plain
    set, ``queued``: the first purge folds it into the index and purges its cids."""
    seq = await rs.add_message(APP, CID, "m1", "task", {"title": "t"}, 10)
    with redis.Redis.from_url(shared_redis.url) as r:
        r.delete("up:due")
        r.sadd("up:queued", f"{APP}\n{CID}", f"{APP}\n{'f' * 32}")
    clock.now = 2_000.0
    assert [s for s, _, _ in await rs.after(APP, CID, 0)] == []  # hidden already
    assert await rs.purge_expired() == 1
    with redis.Redis.from_url(shared_redis.url) as r:
        assert not r.exists("up:queued") and r.zcard("up:due") == 0
        assert not r.exists(f"up:b:{APP}:{CID}") and seq > 0


async def test_the_unseen_purge_forgets_in_batches_and_spares_a_cid_seen_meanwhile(
    rs: RedisStore, clock: Clock, shared_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cids unseen for 90 days go 500 per MULTI (not all in one transaction that holds
    Redis), and a cid that says hello on some node after the purge chose it, before its
    batch is applied, is kept (the script checks its last hello again)."""
    cids = [f"{n:032x}" for n in range(1200)]
    for cid in cids:
        await rs.register(APP, cid, 0)
    clock.now += 100 * 86_400
    back = cids[700]
    present_many = rs.present_many

    async def hello_meanwhile(appid: str, some: list[str]) -> set[str]:
        await rs.register(APP, back, 0)  # another node's hello, just now
        return await present_many(appid, some)

    monkeypatch.setattr(rs, "present_many", hello_meanwhile)
    with redis.Redis.from_url(shared_redis.url) as r:
        r.config_resetstat()
        assert await rs.purge_unseen(90 * 86_400) == len(cids) - 1
        assert command_calls(r)["exec"] == 3 + 1  # three batches, and the hello's own MULTI
    assert await rs.known(APP, back)
    assert not await rs.known(APP, cids[0]) and not await rs.known(APP, cids[-1])


async def test_a_request_id_claim_holds_off_others_and_gives_way_to_the_answer(
    rs: RedisStore, shared_redis: RedisServer
) -> None:
    """One call at a time makes a request_id's answer: its claim refuses a second
    claim, reads as no answer, goes when the call fails, gives way to the answer it
    makes (never to another's: the first answer stays), and lapses after CLAIM_TTL_S
    if its node died."""
    assert await rs.claim_answer(APP, "req-1")
    assert not await rs.claim_answer(APP, "req-1")
    assert await rs.answer_for(APP, "req-1") is None
    await rs.release_answer(APP, "req-1")
    assert await rs.claim_answer(APP, "req-1")
    await rs.remember_answer(APP, "req-1", {"n": 1})
    assert not await rs.claim_answer(APP, "req-1")
    await rs.release_answer(APP, "req-1")  # a late release leaves the answer alone
    await rs.remember_answer(APP, "req-1", {"n": 2})
    assert await rs.answer_for(APP, "req-1") == {"n": 1}
    assert await rs.claim_answer(APP, "req-2")
    with redis.Redis.from_url(shared_redis.url) as r:
        assert 0 < int(r.ttl(f"up:r:{APP}:req-2")) <= 5
        assert int(r.ttl(f"up:r:{APP}:req-1")) > 86_400


async def test_a_claim_lost_to_a_retry_is_not_released_or_renewed_by_its_first_call(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """Redis away past CLAIM_TTL_S: node A's claim lapsed and node B's retry claimed
    the request_id. With one marker for every call, A's release deleted B's claim (a
    third call then made a third answer) and A's renewals kept it alive."""
    other = RedisStore(shared_redis.url, clock)
    try:
        assert await rs.claim_answer(APP, "req-9")
        with redis.Redis.from_url(shared_redis.url) as r:
            r.delete(f"up:r:{APP}:req-9")  # A's claim lapsed
        assert await other.claim_answer(APP, "req-9")  # B's retry holds it now
        await rs.release_answer(APP, "req-9")  # A's call fails late
        assert not await rs.claim_answer(APP, "req-9")  # B still holds it
        await rs.remember_answer(APP, "req-9", {"by": "A"})  # nor does A answer over it
        await other.remember_answer(APP, "req-9", {"by": "B"})
        assert await rs.answer_for(APP, "req-9") == {"by": "B"}
        assert not rs._claims and not other._claims  # nothing kept per request_id
    finally:
        await other.close()


async def test_the_expiry_purge_frees_memory_when_redis_is_full(
    redis_server: RedisServer, clock: Clock
) -> None:
    """A full Redis (maxmemory, noeviction) refuses a script whose first write may
    grow memory: the purge's ZADD that moves a cid to its next expiry (its earliest
    message acked) failed the whole batch, so nothing expired was removed, the one
    thing that frees room, round after round; so did a batch of acks whose first
    removed nothing."""
    rs = RedisStore(redis_server.url, clock)
    other = "fedcba9876543210fedcba9876543210"
    try:
        for cid in (CID, other):
            await rs.register(APP, cid, 0)
        first = await rs.add_message(APP, CID, "m1", "task", {"title": "t"}, 10)
        second = await rs.add_message(APP, CID, "m2", "task", {"title": "t"}, 1000)
        third = await rs.add_message(APP, other, "m3", "task", {"title": "t"}, 10)
        await rs.ack(APP, CID, first)  # CID's due entry still names m1's expiry
        clock.advance(20)
        r = redis.Redis.from_url(redis_server.url)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", r.info("memory")["used_memory"] - 100_000)
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                r.set("probe", "x")  # full indeed
            assert await rs.purge_expired() == 1
            assert await rs.after(APP, other, 0) == []
            assert [i for _, i, _ in await rs.after(APP, CID, 0)] == ["m2"]
            # acks free room too: a batch whose first ack removes nothing (m3 purged)
            # only moves that cursor, and was refused with the rest
            await rs.ack_many([(APP, other, third), (APP, CID, second)])
        finally:
            r.config_set("maxmemory", 0)
        assert await rs.after(APP, CID, 0) == []
    finally:
        await rs.close()


async def test_a_request_id_claim_lasts_as_long_as_its_call(
    shared_redis: RedisServer, clock: Clock, tmp_path: Path
) -> None:
    """Two nodes, one request_id: the first call holds the claim while it runs, however
    long (a slow Redis, a broadcast's reads). The claim lapsed after CLAIM_TTL_S while
    the call still ran: the sender's retry on another node claimed it, stored the
    message again under a new task and answered; then the first call committed and
    answered too: two answers, two messages, for one request_id."""
    shared_redis.flush()
    first, second = RedisStore(shared_redis.url, clock), RedisStore(shared_redis.url, clock)
    try:
        await first.register(APP, CID, 0)
        config = GatewayConfig(data_dir=tmp_path)
        node_a = GatewayService(config, first, clock)
        node_b = GatewayService(config, second, clock)
        slow = asyncio.Event()
        held = asyncio.Event()

        async def slow_presence(appid: str, cids: list[str]) -> set[str]:
            """Node A's presence lookup, waiting as one on a slow Redis does."""
            held.set()
            await slow.wait()
            return set()

        async def presence(appid: str, cids: list[str]) -> set[str]:
            return set()

        body = {"push_clientid": CID, "title": "t", "content": "c", "payload": {}}
        body["request_id"] = "request-slow-1"
        call_a = asyncio.create_task(node_a.send_message(APP, body, slow_presence))
        await asyncio.wait_for(held.wait(), 10)
        with redis.Redis.from_url(shared_redis.url, decode_responses=True) as r:
            key = f"up:r:{APP}:request-slow-1"
            assert r.get(key).startswith(f"{CLAIMED}:")  # this call's own marker
            await asyncio.sleep(CLAIM_TTL_S + 1)  # past the claim's first lease
            retry = asyncio.create_task(node_b.send_message(APP, body, presence))
            await asyncio.sleep(0.5)
            slow.set()
            answer_a = (await call_a).answer
            try:
                answer_b = (await retry).answer
            except UniError as exc:  # still in progress when it looked: refused, fine
                assert exc.status == 503
                answer_b = answer_a
        assert answer_b == answer_a
        assert len(await first.after(APP, CID, 0)) == 1
    finally:
        await first.close()
        await second.close()


async def test_nodes_whose_clocks_differ_agree_on_a_message_expiry(
    shared_redis: RedisServer,
) -> None:
    """Expiries were stamped and judged on each node's own clock: a node two minutes
    ahead read a message another node had just stored with a 60 s ttl (an online-only
    push, answered successed_online) as expired, never sent it, and purged it."""
    shared_redis.flush()
    behind, ahead = Clock(1_000.0), Clock(1_120.0)
    a, b = RedisStore(shared_redis.url, behind), RedisStore(shared_redis.url, ahead)
    try:
        await a.register(APP, CID, 0)
        await a.add_message(APP, CID, "m1", "task", {"title": "t"}, 60)
        assert [i for _, i, _ in await b.after(APP, CID, 0)] == ["m1"]
        assert await b.pending_count(APP, CID) == 1
        assert await b.purge_expired() == 0
        assert [i for _, i, _ in await a.after(APP, CID, 0)] == ["m1"]
        ahead.advance(61)  # its ttl, on every node's clock
        assert await b.after(APP, CID, 0) == []
        assert await b.purge_expired() == 1
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("found_by", ["push", "beat"])
async def test_a_seq_counter_gone_back_is_found(
    rs: RedisStore, shared_redis: RedisServer, found_by: str
) -> None:
    """Redis back with older data (an older snapshot, a lagging replica) keeps its
    epoch, so nothing noticed that new seqs repeated ones already sent: found by the
    first push after it (before its answer) or by the next beat."""
    lost: list[str] = []
    rs.node = "n1"
    rs.on_lost = lambda: lost.append("lost")
    await rs.register(APP, CID, 0)
    await rs.heartbeat()
    for n in range(3):
        await rs.add_message(APP, CID, f"m{n}", "task", {"title": "t"}, 60)
    await rs.heartbeat()
    assert lost == []
    with redis.Redis.from_url(shared_redis.url) as r:
        r.set("up:seq", 1)  # as the snapshot taken after the first push held it
    if found_by == "push":
        seq = await rs.add_message(APP, CID, "m9", "task", {"title": "t"}, 60)
        assert seq == 2 and lost == ["lost"]
    else:
        await rs.heartbeat()
        assert lost == ["lost"]
    await rs.heartbeat()  # once: what it has seen since is the store's new counter
    await rs.add_message(APP, CID, "m10", "task", {"title": "t"}, 60)
    assert lost == ["lost"]


def _stalled_reads(store: RedisStore, release: asyncio.Event) -> asyncio.Event:
    """The store's client() reads (the event returned is set), then waits for
    ``release``: a hello on another node commits between this one's read of the cid
    and its registration."""
    done = asyncio.Event()
    read = store.client

    async def client(appid: str, cid: str) -> ClientRecord | None:
        row = await read(appid, cid)
        done.set()
        await release.wait()
        return row

    store.client = client  # type: ignore[method-assign]
    return done


async def test_two_first_hellos_on_two_nodes_bind_the_cid_once(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """As on one node: a cid is bound to the first secret, and a hello with another is
    refused. Both hellos read "no such cid" before either committed, both were taken,
    and the later one's secret replaced the earlier's (its daemon refused from then on,
    while the other connection holds the cid)."""
    other = RedisStore(shared_redis.url, clock)
    try:
        release = asyncio.Event()
        reads = [_stalled_reads(s, release) for s in (rs, other)]
        services = [GatewayService(GatewayConfig(), s, clock) for s in (rs, other)]
        hellos = [
            asyncio.create_task(svc.register(Register(APP, CID, 0, secret, "127.0.0.1")))
            for svc, secret in zip(services, ("secret-one-0001", "secret-two-0002"), strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in reads))
        release.set()
        answers = await asyncio.gather(*hellos)
        refused = [a for a in answers if isinstance(a, Close)]
        assert len(refused) == 1 and refused[0].code == CloseCode.CID_TAKEN, answers
        taken = answers.index(refused[0])
        row = await other.client(APP, CID)
        assert row is not None
        assert row.secret_hash == secret_hash(("secret-one-0001", "secret-two-0002")[1 - taken])
    finally:
        await other.close()


async def test_a_hello_that_read_no_cid_keeps_what_was_issued_meanwhile(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """A hello that read "no such cid" while another node registered it and a push was
    stored: its registration wrote the cid afresh (issued 0, acked 0), and the daemon's
    ack of that push was refused as past what was issued."""
    other = RedisStore(shared_redis.url, clock)
    try:
        release = asyncio.Event()
        reads = _stalled_reads(other, release)
        late = asyncio.create_task(other.register(APP, CID, 0))
        await reads.wait()
        await rs.register(APP, CID, 0)
        seq = await rs.add_message(APP, CID, "m1", "task", {"title": "t"}, 60)
        release.set()
        assert await late == 0
        row = await rs.client(APP, CID)
        assert row is not None and row.issued == seq
        assert [s for s, _, _ in await rs.after(APP, CID, 0)] == [seq]
    finally:
        await other.close()


async def test_an_unbind_racing_a_rebind_leaves_the_new_alias_whole(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock
) -> None:
    """unboundAlias {cid, A} read "cid is A", then another node moved the cid to B: its
    delete took the cid's alias (B now) and left it in B's index, so getCidByAlias(B)
    named a cid whose alias was none. As on SQLite: only an alias still A goes."""
    other = RedisStore(shared_redis.url, clock)
    try:
        await rs.register(APP, CID, 0)
        await rs.bind_alias(APP, CID, "A")
        release = asyncio.Event()
        begun = asyncio.Event()
        transaction = rs.transaction

        @contextlib.asynccontextmanager
        async def stalled() -> AsyncIterator[None]:  # between the call and its commit
            begun.set()
            await release.wait()
            async with transaction():
                yield

        rs.transaction = stalled  # type: ignore[method-assign]
        unbind = asyncio.create_task(rs.unbind_alias(APP, CID, "A"))
        await begun.wait()
        await other.bind_alias(APP, CID, "B")
        release.set()
        await unbind
        assert await other.alias_of(APP, CID) == "B"
        assert await other.cids_of_alias(APP, "B") == [CID]
        assert await other.cids_of_alias(APP, "A") == []
    finally:
        await other.close()


async def _race(
    shared_redis: RedisServer,
    clock: Clock,
    rs: RedisStore,
    nodes: int,
    method: str,
    bodies: list[Any],
) -> list[Any]:
    """Two calls of ``method`` (on two nodes, or two requests on one), each reading
    before the other commits: each store's transaction() waits, once its body has run
    (its reads made, its writes queued), until both calls are there, then both EXEC."""
    stores = [rs] if nodes == 1 else [rs, RedisStore(shared_redis.url, clock)]
    try:
        release = asyncio.Event()
        held: list[None] = []
        for store in stores:

            @contextlib.asynccontextmanager
            async def stalled(transaction: Any = store.transaction) -> AsyncIterator[None]:
                async with transaction():
                    yield
                    held.append(None)
                    if len(held) == len(bodies):
                        release.set()
                    await release.wait()

            store.transaction = stalled  # type: ignore[method-assign]
        services = [GatewayService(GatewayConfig(), s, clock) for s in stores]

        async def nobody(appid: str, cids: list[str]) -> set[str]:
            return set()

        calls = [
            asyncio.create_task(services[i % len(services)].call(APP, method, body, nobody))
            for i, body in enumerate(bodies)
        ]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
    finally:
        for store in stores[1:]:
            await store.close()


@pytest.mark.parametrize("nodes", [1, 2])
async def test_two_calls_binding_one_alias_together_cannot_pass_its_cap(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock, nodes: int
) -> None:
    """cidBindAlias checked the 10 cids an alias may have against a read made before
    its MULTI: two nodes (or two requests on one), each binding 3 more cids to an alias
    of 6, both read 6 and both committed (12). As on SQLite: the cap is checked and the
    list written in one step, and the call that comes second is refused with the same
    answer, binding none of its list."""
    cids = [f"{n:032x}" for n in range(12)]
    for cid in cids:
        await rs.register(APP, cid, 0)
    for cid in cids[:6]:
        await rs.bind_alias(APP, cid, "team")
    lists = [[{"cid": c, "alias": "team"} for c in part] for part in (cids[6:9], cids[9:12])]
    answers = await _race(shared_redis, clock, rs, nodes, "cidBindAlias", lists)
    refused = [a for a in answers if isinstance(a, UniError)]
    assert len(refused) == 1, answers
    assert refused[0].err_code == ILLEGAL
    assert refused[0].err_msg == "illegal params: team already has 10 cids bound (the most)"
    bound = cids[6:9] if answers.index(refused[0]) == 1 else cids[9:12]
    assert await rs.cids_of_alias(APP, "team") == sorted([*cids[:6], *bound])
    for cid in cids[6:]:
        assert await rs.alias_of(APP, cid) == ("team" if cid in bound else None)


@pytest.mark.parametrize("nodes", [1, 2])
async def test_two_calls_tagging_one_cid_together_cannot_pass_its_cap(
    rs: RedisStore, shared_redis: RedisServer, clock: Clock, nodes: int
) -> None:
    """cidsBindCustomTag checked a cid's 100 tags against a read made before its
    MULTI: two nodes (or two requests on one) adding one new tag each to a cid of 99
    both read 99 and both committed (101). Now the second is refused as on SQLite, and
    adds none of its cids' tags."""
    other_cid = "f" * 32
    for cid in (CID, other_cid):
        await rs.register(APP, cid, 0)
    await rs.set_tags(APP, CID, [f"t{i:03}" for i in range(99)])
    bodies = [{"cids": [other_cid, CID], "custom_tag": tag} for tag in ("new1", "new2")]
    answers = await _race(shared_redis, clock, rs, nodes, "cidsBindCustomTag", bodies)
    refused = [a for a in answers if isinstance(a, UniError)]
    assert len(refused) == 1, answers
    lost = ("new1", "new2")[answers.index(refused[0])]
    kept = ("new1", "new2")[1 - answers.index(refused[0])]
    assert refused[0].err_code == ILLEGAL
    assert refused[0].err_msg == (
        f"illegal params: custom_tag {lost} would be tag 101 of cid {CID}: "
        "a cid has at most 100 tags"
    )
    assert len(await rs.tags_of(APP, CID)) == 100 and kept in await rs.tags_of(APP, CID)
    assert await rs.tags_of(APP, other_cid) == [kept]
    assert await rs.cids_with_tag(APP, lost) == []

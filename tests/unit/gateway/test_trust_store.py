"""gateway/store.py and service.py: cid secrets, the cursor cap, receipts once per real
target, unseen cids expiring, and a store from before all that (issue 10 items 1, 2, 13,
14); real SQLite files, an injected clock."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.ratelimit import RateLimiter
from unipush_bridge.gateway.service import CID_UNSEEN_EXPIRY_S, GatewayService
from unipush_bridge.gateway.session import Close, Receipted, Register
from unipush_bridge.gateway.sqlitestore import SqliteStore
from unipush_bridge.gateway.store import GatewayStore, secret_hash
from unipush_bridge.gateway.storeapi import Store
from unipush_bridge.wire.gateway import CloseCode, Error, parse_server_frame

APP = "__UNI__A"
CID = "0123456789abcdef0123456789abcdef"
CID2 = "fedcba9876543210fedcba9876543210"
SECRET = "a" * 64
BODY = {"title": "t", "content": "c"}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gs(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    s: Store = SqliteStore(tmp_path / "gateway.sqlite3", clock)
    yield s
    await s.close()


@pytest.fixture
def service(gs: Store, clock: Clock, tmp_path: Path) -> GatewayService:
    return GatewayService(GatewayConfig(data_dir=tmp_path), gs, clock)


async def add(gs: Store, cid: str = CID, taskid: str = "task", n: int = 1) -> int:
    return await gs.add_message(APP, cid, f"m{n}-{cid}", taskid, BODY, 3600)


def add_sync(gs: GatewayStore, cid: str = CID) -> int:
    return gs.add_message(APP, cid, f"m1-{cid}", "task", BODY, 3600)


def refusal(outcome: int | Close) -> tuple[int, Error]:
    assert isinstance(outcome, Close), outcome
    frame = parse_server_frame(outcome.frame)
    assert isinstance(frame, Error) and frame.fatal
    return outcome.code, frame


# item 1 ---------------------------------------------------------------------------------


def test_only_the_hash_of_the_secret_is_stored(tmp_path: Path, clock: Clock) -> None:
    """issue 10 item 1: the gateway's file never holds a daemon's secret."""
    gs = GatewayStore(tmp_path / "gateway.sqlite3", clock)
    gs.register(APP, CID, 0, secret_hash(SECRET))
    record = gs.client(APP, CID)
    assert record is not None and record.secret_hash == secret_hash(SECRET)
    assert SECRET not in (tmp_path / "gateway.sqlite3").read_bytes().decode("latin-1")


async def test_a_bound_cid_refuses_a_missing_or_wrong_secret(service: GatewayService) -> None:
    """issue 10 item 1: first registration binds; later hellos must match."""
    assert await service.register(Register(APP, CID, 0, SECRET)) == 0
    for secret in (None, "b" * 64):
        code, frame = refusal(await service.register(Register(APP, CID, 0, secret)))
        assert code == CloseCode.CID_TAKEN == 4403
        assert frame.code == "cid_taken" and frame.message.startswith("hello.secret: ")
    assert await service.register(Register(APP, CID, 0, SECRET)) == 0


async def test_a_legacy_hello_is_accepted_while_the_cid_is_unbound(service: GatewayService) -> None:
    """issue 10 item 1: a daemon from before secrets keeps working until its cid is
    bound; the first secret binds it."""
    assert await service.register(Register(APP, CID, 0)) == 0
    assert await service.register(Register(APP, CID, 0)) == 0
    assert await service.register(Register(APP, CID, 0, SECRET)) == 0
    assert isinstance(await service.register(Register(APP, CID, 0)), Close)


def old_store(path: Path, acked: int) -> None:
    """A gateway file as today's code wrote it: clients without secret or issued seq."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE clients (appid TEXT NOT NULL, cid TEXT NOT NULL,
            acked INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
            last_seen REAL NOT NULL, PRIMARY KEY (appid, cid));
        CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, appid TEXT NOT NULL,
            cid TEXT NOT NULL, id TEXT NOT NULL, taskid TEXT NOT NULL, body TEXT NOT NULL,
            expires_at REAL NOT NULL);
        """
    )
    db.execute("INSERT INTO clients VALUES (?, ?, ?, 1, 1)", (APP, CID, acked))
    db.execute("INSERT INTO clients VALUES (?, ?, 0, 1, 1)", (APP, CID2))
    for n in range(1, 6):  # seqs 1..5; 1..3 acked by CID, 4 and 5 still waiting for CID2
        db.execute(
            "INSERT INTO messages (appid, cid, id, taskid, body, expires_at) "
            "VALUES (?, ?, ?, 'task', '{}', 9e12)",
            (APP, CID if n <= 3 else CID2, f"m{n}"),
        )
    db.execute("DELETE FROM messages WHERE seq<=3")
    db.commit()
    db.close()


def test_a_store_from_before_secrets_upgrades_and_keeps_its_cids(
    tmp_path: Path, clock: Clock
) -> None:
    """issue 10 items 1 and 2: the old file opens, its cids stay known and unbound (the
    upgraded daemon's first secret binds its cid), cursors stay where they were, and a
    cursor a hostile ack pushed past every seq comes back to the highest seq issued."""
    path = tmp_path / "gateway.sqlite3"
    old_store(path, acked=3)
    gs = GatewayStore(path, clock)
    try:
        assert gs.known(APP, CID) and gs.known(APP, CID2)
        record = gs.client(APP, CID)
        assert record is not None and record.secret_hash is None and record.issued == 5
        assert gs.register(APP, CID, 3, secret_hash(SECRET)) == 3
        assert gs.client(APP, CID).secret_hash == secret_hash(SECRET)  # type: ignore[union-attr]
        assert [s for s, _, _ in gs.after(APP, CID2, 0)] == [4, 5]
        assert add_sync(gs, CID) == 6
    finally:
        gs.close()
    hostile = tmp_path / "hostile.sqlite3"
    old_store(hostile, acked=2**63 - 1)
    gs = GatewayStore(hostile, clock)
    try:
        assert gs.register(APP, CID, 0) == 5
        seq = add_sync(gs, CID)
        assert [s for s, _, _ in gs.after(APP, CID, gs.register(APP, CID, 0))] == [seq]
    finally:
        gs.close()


# item 2 ---------------------------------------------------------------------------------


async def test_the_cursor_is_capped_at_the_highest_seq_issued(gs: Store) -> None:
    """issue 10 item 2: max(stored, hello.acked) had no upper bound."""
    await gs.register(APP, CID, 0)
    s1, s2 = await add(gs, n=1), await add(gs, n=2)
    await add(gs, CID2, n=3)  # issued to another cid: not ours to count
    assert await gs.register(APP, CID, 2**63 - 1) == 0  # ahead of us: our own cursor
    assert await gs.register(APP, CID, s1) == s1  # an honest cursor is taken
    assert await gs.register(APP, CID, s2 + 1) == s1
    await gs.ack(APP, CID, 2**63 - 1)  # the store caps even if a caller does not check
    assert (await gs.client(APP, CID)).acked == s2  # type: ignore[union-attr]
    s4 = await add(gs, n=4)
    assert [s for s, _, _ in await gs.after(APP, CID, await gs.register(APP, CID, 0))] == [s4]


async def test_the_service_refuses_an_ack_past_the_last_issued_seq(
    service: GatewayService, gs: Store
) -> None:
    """issue 10 item 2: refused with a non-fatal bad_frame; nothing is deleted."""
    await service.register(Register(APP, CID, 0, SECRET))
    seq = await add(gs)
    refused = await service.ack(APP, CID, seq + 1)
    assert refused is not None
    frame = parse_server_frame(refused)
    assert isinstance(frame, Error) and frame.code == "bad_frame" and not frame.fatal
    assert frame.message == f"ack.seq: {seq + 1} is past the last seq sent to this cid ({seq})"
    assert await gs.pending_count(APP, CID) == 1
    assert await service.ack(APP, CID, seq) is None
    assert await gs.pending_count(APP, CID) == 0


# item 13 --------------------------------------------------------------------------------


async def test_new_registrations_are_limited_per_address_not_reconnects(
    service: GatewayService, clock: Clock
) -> None:
    """issue 10 item 13: 3,000 cids in 4 s were accepted; now 60 new cids a minute per
    address, while known cids reconnect at will and other addresses are not affected."""
    service.new_cid_rate = RateLimiter(1.0, 3, clock)  # 3 at once, then one a second
    cids = [f"{n:032x}" for n in range(4)]
    for cid in cids[:3]:
        assert await service.register(Register(APP, cid, 0, SECRET, "10.0.0.1")) == 0
    code, frame = refusal(await service.register(Register(APP, cids[3], 0, SECRET, "10.0.0.1")))
    assert code == CloseCode.TOO_MANY_REGISTRATIONS == 4429
    assert frame.code == "too_many_registrations"
    assert frame.message.startswith("hello: more than 60 new cids a minute from this address")
    assert not await service.store.known(APP, cids[3])
    for _ in range(5):  # a known cid is a reconnect, not a registration
        assert await service.register(Register(APP, cids[0], 0, SECRET, "10.0.0.1")) == 0
    assert await service.register(Register(APP, cids[3], 0, SECRET, "10.0.0.2")) == 0
    clock.now += 1
    assert await service.register(Register(APP, CID2, 0, SECRET, "10.0.0.1")) == 0


async def test_new_registrations_count_an_ipv6_caller_by_its_64(
    gs: Store, clock: Clock, tmp_path: Path
) -> None:
    """The budget was kept per exact peer address: a caller holding an IPv6 /64 (one
    subscriber's block, 2**64 addresses) took a fresh budget with each address it
    used, and an IPv4 peer seen as ::ffff:a.b.c.d had a second one. It counts as the
    auth-failure and API limits count (access.source_of)."""
    config = GatewayConfig(data_dir=tmp_path, new_cids_per_minute=2)
    service = GatewayService(config, gs, clock, monotonic=clock)
    peers = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
    outcomes = [
        await service.register(Register(APP, f"{n:032x}", 0, SECRET, peer))
        for n, peer in enumerate(peers)
    ]
    assert outcomes[:2] == [0, 0]
    assert refusal(outcomes[2])[0] == CloseCode.TOO_MANY_REGISTRATIONS
    assert await service.register(Register(APP, "a" * 32, 0, SECRET, "2001:db8:1:3::1")) == 0
    for n, peer in enumerate(["10.0.0.9", "::ffff:10.0.0.9", "10.0.0.9"]):
        outcome = await service.register(Register(APP, f"{n:031x}b", 0, SECRET, peer))
        assert (outcome == 0) == (n < 2), (peer, outcome)


@pytest.mark.parametrize("per_minute", [2, 0])
async def test_the_new_cid_budget_is_the_gateways_setting(
    gs: Store, clock: Clock, tmp_path: Path, per_minute: int
) -> None:
    """new_cids_per_minute sets the budget (the bench's 5,000 daemons on loopback, a NAT
    in front of many first-time daemons); 0 turns the limit off."""
    config = GatewayConfig(data_dir=tmp_path, new_cids_per_minute=per_minute)
    service = GatewayService(config, gs, clock, monotonic=clock)
    outcomes = [
        await service.register(Register(APP, f"{n:032x}", 0, SECRET, "10.0.0.1")) for n in range(5)
    ]
    if per_minute:
        assert outcomes[:2] == [0, 0]
        code, frame = refusal(outcomes[2])
        assert code == CloseCode.TOO_MANY_REGISTRATIONS
        assert frame.message.startswith("hello: more than 2 new cids a minute")
    else:
        assert outcomes == [0] * 5


async def test_unseen_cids_expire_with_their_data(
    service: GatewayService, gs: Store, clock: Clock
) -> None:
    """issue 10 item 13: registrations were permanent; a cid not seen for 90 days goes
    with its messages, alias, tags and uni-id mapping; a connected one stays."""
    online = "1" * 32
    for cid in (CID, CID2, online):
        await service.register(Register(APP, cid, 0, SECRET))
        await gs.add_message(APP, cid, f"m-{cid}", "task", {"title": "t"}, 10**9)
        await gs.bind_alias(APP, cid, f"alias-{cid[:4]}")
        await gs.add_tag(APP, cid, "vip")
        await gs.bind_uniid(APP, cid, "user-1", None)
    clock.now += CID_UNSEEN_EXPIRY_S - 10
    await service.register(Register(APP, CID2, 0, SECRET))  # seen again: its 90 days restart
    assert await service.purge(keep=()) == (0, 0)
    clock.now += 10
    assert await service.purge(keep=[(APP, online)]) == (0, 1)
    assert not await gs.known(APP, CID)
    assert await gs.after(APP, CID, 0) == [] and await gs.alias_of(APP, CID) is None
    assert await gs.tags_of(APP, CID) == [] and await gs.cids_for_users(APP, ["user-1"]) == sorted(
        [CID2, online]
    )
    assert await gs.known(APP, CID2) and await gs.known(APP, online)
    assert await gs.cids_with_tag(APP, "vip") == sorted([CID2, online])


# item 14 --------------------------------------------------------------------------------


async def test_a_receipt_counts_once_and_only_from_a_target(
    service: GatewayService, gs: Store
) -> None:
    """issue 10 item 14: receipts counted for any task of the app, from any cid, each
    time they came; now once per message, from the cid it was sent to."""
    for cid in (CID, CID2):
        await service.register(Register(APP, cid, 0, SECRET))
    await add(gs, CID, taskid="task-1")
    await gs.add_task(APP, "task-1", None, 1, 1)
    mine = Receipted(f"m1-{CID}", "task-1", "display")
    await service.receipt(APP, CID2, mine)  # not a target of task-1
    await service.receipt(APP, CID2, Receipted(f"m1-{CID2}", "task-1", "click"))
    assert await gs.report(APP, "taskid=?", ("task-1",)) == {
        "msg_num": 1, "target_num": 1, "receive_num": 0, "display_num": 0, "click_num": 0
    }  # fmt: skip
    await service.receipt(APP, CID, mine)
    await service.receipt(APP, CID, mine)  # repeated
    await service.receipt(APP, CID, Receipted(f"m1-{CID}", "task-2", "display"))  # wrong task
    await service.receipt(APP, CID, Receipted(f"m1-{CID}", "task-1", "click"))
    await service.receipt(APP, CID, Receipted(f"m1-{CID}", "task-1", "click"))
    report = await gs.report(APP, "taskid=?", ("task-1",))
    assert report is not None and (report["display_num"], report["click_num"]) == (1, 1)

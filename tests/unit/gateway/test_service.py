"""gateway/service.py: sendMessage's orchestration as plain code, no HTTP, no sockets."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.errors import UniError
from unipush_bridge.gateway.service import Delivery, GatewayService, Outcome
from unipush_bridge.gateway.sqlitestore import SqliteStore

APP = "__UNI__SVC"
ON, OFF, NEVER = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[GatewayService]:
    clock = itertools.count(1_800_000_000).__next__
    store = SqliteStore(tmp_path / "gw.sqlite3", lambda: float(clock()))
    try:
        await store.register(APP, ON, 0)
        await store.register(APP, OFF, 0)
        yield GatewayService(GatewayConfig(data_dir=tmp_path), store, lambda: 1_800_000_000.0)
    finally:
        await store.close()


async def online(appid: str, cids: list[str]) -> set[str]:
    return {ON} & set(cids)


def body(**extra: object) -> dict[str, object]:
    return {
        "push_clientid": [ON, OFF, NEVER],
        "title": "T",
        "content": "C",
        "payload": "p",
        **extra,
    }


async def test_statuses_and_only_online_cids_are_handed_over(service: GatewayService) -> None:
    outcome = await service.send_message(APP, body(), online)
    ((taskid, statuses),) = outcome.answer["data"].items()
    assert statuses == {
        ON: "successed_online",
        OFF: "successed_offline",
        NEVER: "target user is invalid",
    }
    (delivery,) = outcome.deliveries
    assert isinstance(delivery, Delivery) and delivery.cid == ON
    assert json.loads(delivery.body_json)["taskid"] == taskid  # compact JSON now
    assert await service.store.after_raw(APP, OFF, 0)  # stored for later


async def test_a_repeated_request_id_answers_the_same_and_hands_over_nothing(
    service: GatewayService,
) -> None:
    first = await service.send_message(APP, body(request_id="r" * 12), online)
    again = await service.send_message(APP, body(request_id="r" * 12), online)
    assert again.answer == first.answer
    assert again.deliveries == []


async def test_online_only_stores_nothing_for_an_offline_cid(service: GatewayService) -> None:
    outcome = await service.send_message(APP, body(settings={"ttl": -1}), online)
    ((_, statuses),) = outcome.answer["data"].items()
    assert statuses[OFF] == "successed_ignore"
    assert await service.store.after_raw(APP, OFF, 0) == []


async def test_other_methods_go_through_the_same_call(service: GatewayService) -> None:
    outcome = await service.call(APP, "getClientStatusByCid", {"cid": ON}, online)
    assert outcome.answer["errCode"] == 0 and outcome.deliveries == []
    with pytest.raises(UniError, match="not a uni-push server method"):
        await service.call(APP, "noSuchMethod", {}, online)


async def test_authorize_names_what_to_send(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gw.sqlite3", lambda: 0.0)
    try:
        config = GatewayConfig(data_dir=tmp_path, server_secret="s" * 16)
        service = GatewayService(config, store, lambda: 0.0)
        service.authorize(APP, "Bearer " + "s" * 16)
        with pytest.raises(UniError, match="Authorization: Bearer <server_secret>"):
            service.authorize(APP, "Bearer wrong")
    finally:
        await store.close()


async def test_no_registered_cid_fails_the_call_as_uni_does(service: GatewayService) -> None:
    """uni-im tells these failures apart from the others by errMsg "target user is
    invalid" (a cid) and errCode uni-push-user-invalid (a uni-id user): the user's
    messages then wait in its own database."""
    with pytest.raises(UniError) as info:
        await service.send_message(APP, body(push_clientid=[NEVER, "d" * 32]), online)
    assert info.value.envelope() == {
        "errCode": "uni-cloud-push-error-20001",
        "errMsg": "target user is invalid",
        "data": None,
    }
    await service.store.bind_uniid(APP, ON, "alice", None)
    await service.store.bind_uniid(APP, NEVER, "carol", None)  # a cid it then forgot
    for target in ({"user_id": "bob"}, {"user_id": "carol"}, {"user_tag": "nobody"}):
        with pytest.raises(UniError) as info:
            await service.send_message(APP, body(push_clientid=None, **target), online)
        assert info.value.envelope()["errCode"] == "uni-push-user-invalid"
        assert info.value.err_msg.startswith("target user is invalid: no device registered")
    # Nothing was stored or counted for the refused calls.
    assert await service.store.after_raw(APP, ON, 0) == []
    # One registered cid among unknown ones: a success that names each.
    outcome = await service.send_message(APP, body(push_clientid=[NEVER, ON]), online)
    ((_, statuses),) = outcome.answer["data"].items()
    assert statuses == {NEVER: "target user is invalid", ON: "successed_online"}


async def test_a_uni_id_target_pages_500_devices_at_a_time(service: GatewayService) -> None:
    """uni-push-admin's uni-push-co sends again with the answer's before_id until none
    comes back; every device is reached once."""
    cids = [f"{i:032x}" for i in range(1, 1_201)]
    for cid in cids:
        await service.store.register(APP, cid, 0)
        await service.store.bind_uniid(APP, cid, "crowd", None)
    reached: list[str] = []
    before_id = None
    pages = 0
    # As uni-push-co does it: the same body each time, request_id and all, plus the
    # before_id (keyed on the request_id alone, page 1's answer came back for ever).
    data = body(push_clientid=None, user_id="crowd", request_id="req-0123456789")
    while pages < 5:
        extra = {} if before_id is None else {"before_id": before_id}
        outcome = await service.send_message(APP, {**data, **extra}, online)
        ((_, statuses),) = outcome.answer["data"].items()
        assert set(statuses.values()) == {"successed_offline"}
        assert len(statuses) <= 500
        reached += statuses
        pages += 1
        before_id = outcome.answer.get("before_id")
        if before_id is None:
            break
        assert before_id == reached[-1]
    assert pages == 3
    assert reached == cids
    # A page sent again (its answer lost) is answered as before and stores nothing.
    again = await service.send_message(APP, {**data, "before_id": cids[499]}, online)
    assert list(only_statuses(again)) == cids[500:1000]
    assert again.deliveries == []
    assert len(await service.store.after_raw(APP, cids[700], 0)) == 1


async def test_a_page_emptied_meanwhile_is_an_empty_success(service: GatewayService) -> None:
    """Devices that left between two pages end the paging, not with uni-push-user-invalid."""
    cids = [f"{i:032x}" for i in range(1, 502)]
    for cid in cids:
        await service.store.register(APP, cid, 0)
        await service.store.bind_uniid(APP, cid, "crowd", None)
    first = await service.send_message(APP, body(push_clientid=None, user_id="crowd"), online)
    assert first.answer["before_id"] == cids[499]
    await service.store.bind_uniid(APP, cids[500], "someone else", None)
    last = await service.send_message(
        APP, body(push_clientid=None, user_id="crowd", before_id=cids[499]), online
    )
    assert only_statuses(last) == {}
    assert "before_id" not in last.answer


def only_statuses(outcome: Outcome) -> dict[str, str]:
    ((_, statuses),) = outcome.answer["data"].items()
    assert isinstance(statuses, dict)
    return statuses


async def test_concurrent_calls_with_one_request_id_store_one_message(
    service: GatewayService,
) -> None:
    """A sender that retries while its first call is still in progress (its timeout
    came before the answer) sends the same request_id twice at once. On Redis each
    call read "no answer yet" before either had committed: ten calls stored ten
    messages under ten task ids. One call makes the message; the others wait for its
    answer and get it."""
    # the Redis client's pool holds connections for all: no call waits on a connect
    await asyncio.gather(*(service.store.answer_for(APP, "warm-up-0001") for _ in range(20)))
    calls = [service.send_message(APP, body(request_id="retried-0001"), online) for _ in range(10)]
    outcomes = [await c for c in [asyncio.ensure_future(c) for c in calls]]
    assert len({json.dumps(o.answer, sort_keys=True) for o in outcomes}) == 1
    assert sum(len(o.deliveries) for o in outcomes) == 1
    assert len(await service.store.after_raw(APP, OFF, 0)) == 1


async def test_a_failed_call_lets_its_request_id_go(service: GatewayService) -> None:
    """A call that fails (here: no registered device) remembers nothing, so the same
    request_id made right after is served, not held up behind the failed one."""
    with pytest.raises(UniError):
        await service.send_message(
            APP, {**body(request_id="retried-0002"), "push_clientid": [NEVER]}, online
        )
    outcome = await asyncio.wait_for(
        service.send_message(APP, body(request_id="retried-0002"), online), 2
    )
    assert outcome.answer["errCode"] == 0 and len(outcome.deliveries) == 1


async def test_broadcasts_to_invented_appids_do_not_refill_a_real_apps_limit(
    service: GatewayService,
) -> None:
    """With no [apps] every appId is served, and each broadcast to an invented one made
    a bucket (and stored an empty task): past the table's size the real app's drained
    bucket was evicted, and its 5 a minute came back at once. Such a broadcast is now
    refused as uni refuses a call with no device, before any bucket; and a bucket in
    debt is never evicted."""
    service.broadcast_rate.max_keys = 20  # the table's 10,000, in small
    msg = {"title": "T", "content": "C"}
    for _ in range(5):
        await service.send_message(APP, msg, online)
    with pytest.raises(UniError) as info:
        await service.send_message(APP, msg, online)
    assert info.value.status == 429
    for n in range(30):
        with pytest.raises(UniError) as info:
            await service.send_message(f"__UNI__X{n:04}", msg, online)
        assert info.value.envelope()["errMsg"].startswith("target user is invalid")
    assert await service.store.tasks_made("__UNI__X0000", 0, 4e9) == (0, 0)
    # Apps that do have devices fill the table: none of them evicts the drained one.
    for n in range(30):
        await service.store.register(f"__UNI__Y{n:04}", ON, 0)
        with contextlib.suppress(UniError):
            await service.send_message(f"__UNI__Y{n:04}", msg, online)
    with pytest.raises(UniError) as info:
        await service.send_message(APP, msg, online)
    assert info.value.envelope()["errCode"] == "uni-cloud-push-error-30014"


async def test_a_request_id_that_spells_a_page_key_is_not_that_page(
    service: GatewayService,
) -> None:
    """A page was remembered as f"{request_id}#before_id:{before_id}", and a request_id
    is any 10 to 32 characters: "abcdefghij#before_id:0" with no before_id had the key
    of "abcdefghij"'s page after "0", whose call was then answered with the other's
    answer and sent nothing."""
    await service.store.bind_uniid(APP, ON, "alice", None)
    first = await service.send_message(
        APP, body(push_clientid=[OFF], request_id="abcdefghij#before_id:0"), online
    )
    assert only_statuses(first) == {OFF: "successed_offline"}
    page = await service.send_message(
        APP,
        body(push_clientid=None, user_id="alice", request_id="abcdefghij", before_id="0"),
        online,
    )
    assert only_statuses(page) == {ON: "successed_online"}
    assert [d.cid for d in page.deliveries] == [ON]
    # and each is still answered from memory when sent again
    again = await service.send_message(
        APP, body(push_clientid=[OFF], request_id="abcdefghij#before_id:0"), online
    )
    assert again.answer == first.answer


async def test_a_task_id_carries_the_local_day_of_its_call_across_midnight(
    tmp_path: Path,
) -> None:
    """The day in a task id is formatted once a minute: a call a second after local
    midnight still carries the new day, and one in the minute before it the old day."""
    import time
    from datetime import datetime

    midnight = datetime(2027, 3, 1).timestamp()  # local time
    now = [midnight - 61.0]
    store = SqliteStore(tmp_path / "gw.sqlite3", lambda: now[0])
    svc = GatewayService(GatewayConfig(rate_limit=0), store, lambda: now[0], time.monotonic)
    await store.register(APP, ON, 0)
    days = []
    for t in (midnight - 61.0, midnight - 1.0, midnight - 0.5, midnight + 1.0, midnight + 59.0):
        now[0] = t
        outcome = await svc.send_message(APP, {"push_clientid": ON, "title": "t"}, online)
        ((taskid, _),) = outcome.answer["data"].items()
        days.append(taskid.split("_")[1])
    await store.close()
    assert days == ["0228", "0228", "0228", "0301", "0301"]


async def test_a_transaction_begun_while_another_requests_is_suspended_is_refused(
    tmp_path: Path,
) -> None:
    """SQLite's units nest as a stack only if nothing inside one gives the loop away:
    a second request's transaction while the first's is suspended is a bug, refused,
    and the first's still commits."""
    from unipush_bridge.gateway.sqlitestore import SuspendedInTransaction

    store = SqliteStore(tmp_path / "gw.sqlite3", lambda: 1_000.0)
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def first() -> None:
        async with store.transaction():
            await store.register(APP, ON, 0)
            inside.set()
            await leave.wait()  # the bug: the loop given away inside a transaction

    task = asyncio.ensure_future(first())
    await inside.wait()
    with pytest.raises(SuspendedInTransaction):
        async with store.transaction():
            pass
    leave.set()
    await task
    async with store.transaction():  # the first left: a new one is fine
        await store.register(APP, OFF, 0)
    await store.synced()
    assert await store.known(APP, ON) and await store.known(APP, OFF)
    await store.close()

"""The gateway's uni-push server API over real HTTP and websockets on loopback, with
the gateway's clock under the test's control (ttl, dedupe, reports, rate limits)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.gatewaykit import UNI_PUSH_ADMIN_FORM, Kit, running_gateway
from unipush_bridge.clients.pushmanager import get_push_manager
from unipush_bridge.gateway.access import AppSecrets

MSG = {"title": "T", "content": "C", "payload": {"k": 1}}


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[Kit]:
    async with running_gateway(tmp_path, rate_limit=0) as k:
        yield k


def only_task(data: dict[str, object]) -> tuple[str, object]:
    ((taskid, per_target),) = data.items()
    return taskid, per_target


# sendMessage targets ------------------------------------------------------------------


async def test_push_clientid_statuses_online_offline_and_unknown(kit: Kit) -> None:
    online = await kit.client()
    offline = await kit.offline_cid()
    unknown = "f" * 32
    data = await kit.ok("sendMessage", {**MSG, "push_clientid": [online.cid, offline, unknown]})
    taskid, statuses = only_task(data)
    assert taskid.startswith("RASL_")
    assert statuses == {
        online.cid: "successed_online",
        offline: "successed_offline",
        unknown: "target user is invalid",
    }
    push = await online.next_push()
    assert push["message"] == {**MSG, "taskid": taskid}
    # the offline cid gets it when it comes back
    back = await kit.client(cid=offline)
    assert (await back.next_push())["message"]["taskid"] == taskid


async def test_alias_target_answers_per_alias_and_cid(kit: Kit) -> None:
    a, b = await kit.client(), await kit.client()
    await kit.ok(
        "cidBindAlias", [{"cid": a.cid, "alias": "alice"}, {"cid": b.cid, "alias": "alice"}]
    )
    assert sorted((await kit.ok("getCidByAlias", "alice"))["cid"]) == sorted([a.cid, b.cid])
    data = await kit.ok("sendMessage", {**MSG, "getui_alias": "alice"})
    _, per_alias = only_task(data)
    assert per_alias == {"alice": {a.cid: "successed_online", b.cid: "successed_online"}}
    await a.next_push()
    await b.next_push()


async def test_custom_tag_target(kit: Kit) -> None:
    a, b = await kit.client(), await kit.client()
    assert await kit.ok("cidsBindCustomTag", {"cids": [a.cid], "custom_tag": "vip"}) == {
        a.cid: "true"
    }
    data = await kit.ok("sendMessage", {**MSG, "getui_custom_tag": "vip"})
    _, statuses = only_task(data)
    assert statuses == {a.cid: "successed_online"}
    await a.next_push()
    await b.no_push()


async def test_broadcast_reaches_every_cid_ever_registered(kit: Kit) -> None:
    online = [await kit.client() for _ in range(3)]
    offline = await kit.offline_cid()
    data = await kit.ok("sendMessage", MSG)
    assert set(data) == {"taskid"} and data["taskid"].startswith("RASA_")
    for client in online:
        assert (await client.next_push())["message"]["taskid"] == data["taskid"]
    back = await kit.client(cid=offline)
    await back.next_push()


async def test_broadcasts_are_limited_per_minute(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, rate_limit=0, broadcast_per_minute=2) as kit:
        await kit.client()
        await kit.ok("sendMessage", MSG)
        await kit.ok("sendMessage", MSG)
        status, answer = await kit.call("sendMessage", MSG)
        assert status == 429
        assert answer["errCode"] == "uni-cloud-push-error-30014"
        kit.clock.advance(31)  # one broadcast's worth of tokens back
        await kit.ok("sendMessage", MSG)


async def test_uni_id_targets_need_a_mapping(kit: Kit) -> None:
    client = await kit.client()
    for target in ("user_id", "user_tag", "device_id"):
        status, answer = await kit.call("sendMessage", {**MSG, target: "u1"})
        assert status == 400
        assert answer["errCode"] == "uni-cloud-push-error-20001"
        assert f"{target} targets need a uni-id mapping" in answer["errMsg"]
    await kit.ok(
        "bindUniIdDevice",
        {"push_clientid": client.cid, "user_id": "u1", "device_id": "d1", "user_tag": ["staff"]},
    )
    for target, value in (("user_id", "u1"), ("user_tag", ["staff"]), ("device_id", "d1")):
        data = await kit.ok("sendMessage", {**MSG, target: value})
        assert only_task(data)[1] == {client.cid: "successed_online"}
        await client.next_push()


async def test_no_registered_device_fails_as_unicloud_does(kit: Kit) -> None:
    """uni-im's sendPushMsg checks for exactly these two answers (the user's message
    waits in its database instead), over real HTTP, on both stores."""
    client = await kit.client()
    status, answer = await kit.call("sendMessage", {**MSG, "push_clientid": ["e" * 32, "f" * 32]})
    assert (status, answer) == (
        400,
        {"errCode": "uni-cloud-push-error-20001", "errMsg": "target user is invalid", "data": None},
    )
    await kit.ok("bindUniIdDevice", {"push_clientid": client.cid, "user_id": "u1"})
    status, answer = await kit.call("sendMessage", {**MSG, "user_id": "gone-for-months"})
    assert status == 400 and answer["errCode"] == "uni-push-user-invalid"
    await client.no_push()


async def test_uni_push_admins_whole_form_reaches_the_daemon(kit: Kit) -> None:
    """uni-push-admin posts every field of its page; the unused ones are "" and the
    tag target is a list of one (its text box split by lines)."""
    client = await kit.client()
    await kit.ok("cidBindCustomTags", {"cid": client.cid, "custom_tag": ["vip"]})
    form = {**UNI_PUSH_ADMIN_FORM, "getui_custom_tag": ["vip"]}
    data = await kit.ok("sendMessage", form)
    assert only_task(data)[1] == {client.cid: "successed_online"}
    message = (await client.next_push())["message"]
    assert message["payload"] == {"page": "/pages/sale"}
    assert "open_url" not in message and "sound" not in message


async def test_a_uni_id_target_pages_with_before_id(kit: Kit) -> None:
    cids = [f"{i:032x}" for i in range(1, 603)]
    for cid in cids:
        await kit.gateway.store.register("__UNI__A", cid, 0)
        await kit.gateway.store.bind_uniid("__UNI__A", cid, "crowd", None)
    first = await kit.call("sendMessage", {**MSG, "user_id": "crowd"})
    assert first[0] == 200
    _, statuses = only_task(first[1]["data"])
    assert isinstance(statuses, dict) and len(statuses) == 500
    assert first[1]["before_id"] == cids[499]
    second = await kit.call("sendMessage", {**MSG, "user_id": "crowd", "before_id": cids[499]})
    assert "before_id" not in second[1]
    _, rest = only_task(second[1]["data"])
    assert isinstance(rest, dict) and list(rest) == cids[500:]
    assert set(rest.values()) == {"successed_offline"}


async def test_only_500_devices_are_reached_per_call(kit: Kit) -> None:
    cids = [f"{i:032x}" for i in range(1, 503)]
    for cid in cids:
        await kit.gateway.store.register("__UNI__A", cid, 0)
    data = await kit.ok("sendMessage", {**MSG, "push_clientid": cids})
    _, statuses = only_task(data)
    assert isinstance(statuses, dict)
    assert list(statuses.values()).count("successed_offline") == 500
    assert [statuses[c] for c in cids[500:]] == ["successed_ignore", "successed_ignore"]


async def test_exclusive_targets_and_limits_are_uni_errors(kit: Kit) -> None:
    status, answer = await kit.call(
        "sendMessage", {**MSG, "push_clientid": "a", "getui_alias": "b"}
    )
    assert status == 400
    assert answer == {
        "errCode": "uni-cloud-push-error-20001",
        "data": None,
        "errMsg": "illegal params: push_clientid, getui_alias are exclusive "
        "targets: give only one of them",
    }
    status, answer = await kit.call("sendMessage", {**MSG, "push_clientid": "a", "title": "x" * 21})
    assert status == 400 and "title must be at most 20 characters" in answer["errMsg"]
    status, answer = await kit.call("sendMessage", [1, 2])
    assert status == 400 and answer["errCode"] == "uni-cloud-push-error-1"


async def test_relaxed_limits(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, strict_limits=False) as kit:
        client = await kit.client()
        await kit.ok("sendMessage", {**MSG, "push_clientid": client.cid, "title": "x" * 200})
        assert (await client.next_push())["message"]["title"] == "x" * 200


# ttl and request_id, with the clock moved ------------------------------------------------


async def test_ttl_expiry_and_purge(kit: Kit) -> None:
    cid = await kit.offline_cid()
    await kit.ok(
        "sendMessage", {**MSG, "push_clientid": cid, "settings": {"ttl": 1000}, "payload": "short"}
    )
    await kit.ok("sendMessage", {**MSG, "push_clientid": cid, "payload": "default ttl"})
    kit.clock.advance(2)
    assert await kit.gateway.store.purge_expired() == 1
    back = await kit.client(cid=cid)
    assert (await back.next_push())["message"]["payload"] == "default ttl"
    await back.no_push()


async def test_a_failed_purge_is_tried_again_at_the_next_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periodic purge ended at its first error (a Redis restarting, a full disk),
    and nothing was purged again until the gateway restarted."""
    from unipush_bridge.gateway import server

    monkeypatch.setattr(server, "PURGE_EVERY_S", 0.02)
    async with running_gateway(tmp_path, rate_limit=0) as kit:
        purge = kit.gateway.service.purge
        rounds: list[str] = []

        async def flaky(keep: object) -> tuple[int, int]:
            if not rounds:
                rounds.append("failed")
                raise OSError("database or disk is full")
            rounds.append("ran")
            return await purge(keep)  # type: ignore[arg-type]

        monkeypatch.setattr(kit.gateway.service, "purge", flaky)
        for _ in range(200):
            if len(rounds) >= 2:
                break
            await asyncio.sleep(0.01)
        assert rounds[:2] == ["failed", "ran"]


async def test_ttl_default_is_one_hour(kit: Kit) -> None:
    cid = await kit.offline_cid()
    await kit.ok("sendMessage", {**MSG, "push_clientid": cid})
    kit.clock.advance(3599)
    assert await kit.gateway.store.pending_count("__UNI__A", cid) == 1
    kit.clock.advance(2)
    assert await kit.gateway.store.pending_count("__UNI__A", cid) == 0


async def test_ttl_minus_one_is_online_only(kit: Kit) -> None:
    online = await kit.client()
    offline = await kit.offline_cid()
    data = await kit.ok(
        "sendMessage", {**MSG, "push_clientid": [online.cid, offline], "settings": {"ttl": -1}}
    )
    assert only_task(data)[1] == {online.cid: "successed_online", offline: "successed_ignore"}
    await online.next_push()
    back = await kit.client(cid=offline)
    await back.no_push()


async def test_request_id_dedupes_across_time(kit: Kit) -> None:
    client = await kit.client()
    body = {**MSG, "push_clientid": client.cid, "request_id": "req-0000000001"}
    first = await kit.ok("sendMessage", body)
    kit.clock.advance(3600)
    assert await kit.ok("sendMessage", {**body, "payload": "other"}) == first
    await client.next_push()
    await client.no_push()


async def test_payload_and_extras_reach_the_daemon_intact(kit: Kit) -> None:
    client = await kit.client()
    extras = {
        "force_notification": True,
        "open_url": "https://example.com/x",
        "sound": "bell",
        "category": {"harmony": "EXPRESS"},
        "badge": "+1",
        "channelId": "orders",
    }
    payload = {"nested": {"list": [1, "二", None]}, "emoji": "🚀"}
    await kit.ok("sendMessage", {**MSG, "push_clientid": client.cid, "payload": payload, **extras})
    message = (await client.next_push())["message"]
    assert message["payload"] == payload
    assert {k: message[k] for k in extras} == extras
    await kit.ok("sendMessage", {**MSG, "push_clientid": client.cid, "payload": "plain text"})
    assert (await client.next_push())["message"]["payload"] == "plain text"


# other methods -------------------------------------------------------------------------------


async def test_client_status_and_detail(kit: Kit) -> None:
    online = await kit.client()
    offline = await kit.offline_cid()
    status = await kit.ok("getClientStatusByCid", f"{online.cid},{offline}")
    assert status[online.cid]["status"] == "online"
    assert status[offline]["status"] == "offline"
    assert status[offline]["last_login_time"] == str(int(kit.clock.now * 1000))
    detail = await kit.ok("getClientDetailByCid", [online.cid, "nope"])
    assert list(detail["validCids"]) == [online.cid]
    assert detail["invalidCids"] == ["nope"]


async def test_reports_count_target_receive_display_click(kit: Kit) -> None:
    a, b = await kit.client(), await kit.client()
    data = await kit.ok(
        "sendMessage", {**MSG, "push_clientid": [a.cid, b.cid], "group_name": "launch"}
    )
    taskid, _ = only_task(data)
    pa, pb = await a.next_push(), await b.next_push()
    await a.ack(pa["seq"])
    await b.ack(pb["seq"])
    await a.receipt(pa, "display")
    await a.receipt(pa, "click")
    await b.receipt(pb, "display")
    expected = {"msg_num": 2, "target_num": 2, "receive_num": 2, "display_num": 2, "click_num": 1}
    for _ in range(100):
        report = await kit.ok("getReport", {"taskid": taskid})
        if report[taskid]["total"] == expected:
            break
        await asyncio.sleep(0.02)
    assert report[taskid]["total"] == expected
    assert report[taskid]["gt"] == {k: v for k, v in expected.items() if k != "msg_num"}
    assert (await kit.ok("getReportByGroupName", "launch"))["launch"]["total"] == expected
    day = datetime.fromtimestamp(kit.clock()).strftime("%Y-%m-%d")
    assert (await kit.ok("getReportByDate", day))[day]["total"] == expected
    # getTodayReport: uni's quota shape, with this one list push counted.
    quotas = (await kit.ok("getTodayReport"))["gt"]
    assert quotas["list"] == {"total_num": 2_000_000, "remain_num": 1_999_999, "limit": False}
    assert quotas["app"] == {"total_num": 100, "remain_num": 100, "limit": False}


async def test_alias_and_tag_methods_round_trip(kit: Kit) -> None:
    c = await kit.client()
    await kit.ok("cidBindAlias", [{"cid": c.cid, "alias": "bob"}])
    assert await kit.ok("getAliasByCid", c.cid) == {"alias": "bob"}
    await kit.ok("unboundAlias", [{"cid": c.cid, "alias": "bob"}])
    assert await kit.ok("getAliasByCid", c.cid) == {"alias": None}
    await kit.ok("cidBindAlias", [{"cid": c.cid, "alias": "carol"}])
    await kit.ok("unboundAllAlias", "carol")
    assert await kit.ok("getCidByAlias", "carol") == {"cid": []}
    await kit.ok("cidBindCustomTags", {"cid": c.cid, "custom_tag": ["b", "a"]})
    assert await kit.ok("searchCustomTagByCid", c.cid) == {c.cid: ["a", "b"]}
    assert await kit.ok("cidsUnboundCustomTag", {"cids": [c.cid], "custom_tag": "a"}) == {
        c.cid: "true"
    }
    assert await kit.ok("searchCustomTagByCid", c.cid) == {c.cid: ["b"]}


async def test_unsupported_and_unknown_methods(kit: Kit) -> None:
    status, answer = await kit.call("addCidToBlacklist", "x")
    assert status == 400
    assert answer["errMsg"].startswith("addCidToBlacklist is not supported by this gateway")
    status, answer = await kit.call("launchRockets", {})
    assert status == 404 and "launchRockets is not a uni-push server method" in answer["errMsg"]


async def test_openapi_is_served(kit: Kit) -> None:
    async with kit.http.get(f"{kit.base}/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/{appId}/sendMessage" in doc["paths"]
    assert "/api/{appId}/getReport" in doc["paths"]


# security and limits ---------------------------------------------------------------------


async def test_per_app_secrets_and_served_apps(tmp_path: Path) -> None:
    apps = {
        "__UNI__A": AppSecrets("server-secret-aaaa", "client-token-aaaa"),
        "__UNI__B": AppSecrets("server-secret-bbbb", None),
    }
    async with running_gateway(tmp_path, apps=apps, client_token="client-token-default") as kit:
        status, answer = await kit.call("getTodayReport")
        assert status == 401 and answer["errCode"] == "uni-cloud-push-error-401"
        bad = {"Authorization": "Bearer server-secret-bbbb"}
        assert (await kit.call("getTodayReport", headers=bad))[0] == 401
        good = {"Authorization": "Bearer server-secret-aaaa"}
        await kit.ok("getTodayReport", headers=good)
        status, _ = await kit.call("getTodayReport", appid="__UNI__C", headers=good)
        assert status == 404
        # daemons: per-app token, the global one as fallback, unknown apps refused
        await kit.client("__UNI__A", token="client-token-aaaa")
        await kit.client("__UNI__B", token="client-token-default")
        for appid, token, code in (
            ("__UNI__A", "client-token-default", 4401),
            ("__UNI__A", None, 4401),
            ("__UNI__C", None, 4404),
        ):
            async with connect(kit.ws_url) as ws:
                hello = {"type": "hello", "appid": appid, **({"token": token} if token else {})}
                await ws.send(json.dumps(hello))
                error = json.loads(await ws.recv())
                assert error["type"] == "error" and error["fatal"] is True
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, rate_limit=10, rate_burst=3) as kit:
        for _ in range(3):
            await kit.ok("getTodayReport")
        async with kit.http.post(f"{kit.base}/api/__UNI__A/getTodayReport") as resp:
            assert resp.status == 429
            assert (await resp.json())["errCode"] == "uni-cloud-push-error-10005"
            assert int(resp.headers["Retry-After"]) >= 1
        kit.clock.advance(0.1)  # one token back at 10/s
        await kit.ok("getTodayReport")
        # with no apps listed, one bucket per source address: another appId shares it
        # (issue 10 item 12: inventing appIds does not bypass the limit)
        status, _ = await kit.call("getTodayReport", appid="__UNI__OTHER")
        assert status == 429


async def test_request_size_is_limited(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, max_body_bytes=2048) as kit:
        status, answer = await kit.call("sendMessage", {**MSG, "payload": "x" * 5000})
        assert status == 400
        assert "larger than 2048 bytes" in answer["errMsg"]


async def test_push_manager_reads_like_unicloud(kit: Kit) -> None:
    client = await kit.client()
    # The body of DCloud's hello-uni-push cloud function, unchanged.
    uni_push = get_push_manager("__UNI__A", kit.base)
    try:
        res = await uni_push.sendMessage(
            {
                "push_clientid": client.cid,
                "title": "通知栏显示的标题",
                "content": "通知栏显示的内容",
                "payload": {"text": "体验一下uni-push2.0"},
            }
        )
        assert res["errCode"] == 0
        bad = await uni_push.sendMessage({"push_clientid": client.cid})
        assert bad["errCode"] == "uni-cloud-push-error-20001"
        assert (await uni_push.getClientStatusByCid(client.cid))["data"][client.cid][
            "status"
        ] == "online"
    finally:
        await uni_push.close()
    assert (await client.next_push())["message"]["payload"] == {"text": "体验一下uni-push2.0"}


async def test_a_message_too_big_for_a_frame_is_refused(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, max_body_bytes=1024 * 1024) as kit:
        client = await kit.client()
        status, answer = await kit.call(
            "sendMessage", {**MSG, "push_clientid": client.cid, "category": {"x": "y" * 200_000}}
        )
        assert status == 400
        # the passed-on fields are short flat strings now (issue 10 item 5)
        assert answer["errMsg"].startswith("illegal params: category must be a string")
        await client.no_push()


async def test_ttl_zero_is_online_only(kit: Kit) -> None:
    online = await kit.client()
    offline = await kit.offline_cid()
    data = await kit.ok(
        "sendMessage", {**MSG, "push_clientid": [online.cid, offline], "settings": {"ttl": 0}}
    )
    assert only_task(data)[1] == {online.cid: "successed_online", offline: "successed_ignore"}
    await online.next_push()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_numbers_that_json_cannot_hold_are_refused(kit: Kit, number: str) -> None:
    """Python's json reads NaN, Infinity and 1e400 (as inf), which are not JSON: they
    were stored and sent to the daemon as ``NaN``/``Infinity``, a push frame that no
    strict parser (JavaScript's JSON.parse, uniCloud's own) takes."""
    client = await kit.client()
    text = f'{{"push_clientid": "{client.cid}", "title": "T", "payload": {{"n": [{number}]}}}}'
    async with kit.http.post(
        f"{kit.base}/api/__UNI__A/sendMessage",
        data=text,
        headers={"Content-Type": "application/json"},
    ) as resp:
        status, answer = resp.status, await resp.json()
    assert status == 400, answer
    assert answer["errCode"] == "uni-cloud-push-error-20001"
    assert "payload.n[0]" in answer["errMsg"] and "finite" in answer["errMsg"]
    await client.no_push()


async def test_an_appid_with_a_colon_cannot_read_another_apps_request_ids(kit: Kit) -> None:
    """The Redis store keys request_id answers as ``r:{appId}:{request_id}``: app
    "__UNI__A:B" asking with request_id "1234567890" got app "__UNI__A"'s answer to
    "B:1234567890" (its cids and statuses) and its own message was dropped. An appId
    holds no ':' (nor a control character: a newline separates the Redis expiry index's
    parts), so such an appId is not served, on either store."""
    victim = await kit.client()
    data = await kit.ok(
        "sendMessage", {**MSG, "push_clientid": victim.cid, "request_id": "B:1234567890"}
    )
    status, answer = await kit.call(
        "sendMessage", {**MSG, "request_id": "1234567890"}, appid="__UNI__A:B"
    )
    assert status == 404, answer
    assert answer["errCode"] == "uni-cloud-push-error-404"
    assert answer["data"] is None and victim.cid not in json.dumps(answer)
    assert only_task(data)[0] not in json.dumps(answer)
    for appid in ("__UNI__A:B", "__UNI__A\nB"):
        ws = await connect(kit.ws_url, compression=None)
        await ws.send(json.dumps({"type": "hello", "v": 1, "appid": appid}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["code"] == "unknown_app", frame
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


async def test_a_bind_list_with_a_bad_item_binds_none_of_it(kit: Kit) -> None:
    c = await kit.client()
    status, answer = await kit.call(
        "cidBindAlias", [{"cid": c.cid, "alias": "dave"}, {"cid": "f" * 32, "alias": "erin"}]
    )
    assert status == 400 and "is not registered" in answer["errMsg"], answer
    assert await kit.ok("getAliasByCid", c.cid) == {"alias": None}
    assert await kit.ok("getCidByAlias", "dave") == {"cid": []}


async def test_one_bind_list_cannot_pass_the_cids_per_alias_cap(kit: Kit) -> None:
    from unipush_bridge.gateway.methods import MAX_CIDS_PER_ALIAS

    cids = [await kit.offline_cid() for _ in range(MAX_CIDS_PER_ALIAS + 1)]
    status, answer = await kit.call("cidBindAlias", [{"cid": c, "alias": "team"} for c in cids])
    assert status == 400 and "already has" in answer["errMsg"], answer
    assert await kit.ok("getCidByAlias", "team") == {"cid": []}


async def test_a_cid_moved_earlier_in_a_bind_list_no_longer_counts_for_its_old_alias(
    kit: Kit,
) -> None:
    from unipush_bridge.gateway.methods import MAX_CIDS_PER_ALIAS

    full = [await kit.offline_cid() for _ in range(MAX_CIDS_PER_ALIAS)]
    await kit.ok("cidBindAlias", [{"cid": c, "alias": "full"} for c in full])
    newcomer = await kit.offline_cid()
    # full[0] leaves "full" first, so the newcomer takes its place in the same call
    await kit.ok(
        "cidBindAlias",
        [{"cid": full[0], "alias": "elsewhere"}, {"cid": newcomer, "alias": "full"}],
    )
    got = (await kit.ok("getCidByAlias", "full"))["cid"]
    assert sorted(got) == sorted([*full[1:], newcomer])

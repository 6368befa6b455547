"""PushClient against a fake daemon speaking wire/local.py: uni's callback rules,
listeners, replay dedupe across reconnects, channels, and a daemon that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.clients.fakedaemon import CID, DETAILS, FakeDaemon, short_socket_path
from unipush_bridge.clients import ChannelManager, DaemonUnavailable, PushClient, UniApiError
from unipush_bridge.wire.local import Event, fail

RECEIVE: dict[str, Any] = {
    "type": "receive",
    "data": {"unipush_version": "2.0", "title": "T", "content": "C"},
}


def receive(payload: Any) -> dict[str, Any]:
    return {"type": "receive", "data": {**RECEIVE["data"], "payload": payload}}


def received(payload: Any, push_id: str) -> dict[str, Any]:
    """What a callback gets for a push: the event, with the push id beside it."""
    return {**receive(payload), "push_id": push_id}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll: the conditions are on other objects' state, with no event to wait on."""
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


# uni's callbacks ------------------------------------------------------------------------


async def test_success_then_complete_get_the_answer(daemon: FakeDaemon) -> None:
    calls: list[tuple[str, str]] = []
    async with PushClient(daemon.path) as push:
        res = await push.get_push_client_id(
            success=lambda r: calls.append(("success", r["errMsg"])),
            fail=lambda r: calls.append(("fail", r["errMsg"])),
            complete=lambda r: calls.append(("complete", r["errMsg"])),
        )
    assert res == {"errMsg": "getPushClientId:ok", "cid": CID}
    assert calls == [("success", "getPushClientId:ok"), ("complete", "getPushClientId:ok")]


async def test_fail_callback_takes_the_failure_instead_of_raising(daemon: FakeDaemon) -> None:
    calls: list[tuple[str, str]] = []
    async with PushClient(daemon.path) as push:
        res = await push.create_push_message(
            success=lambda r: calls.append(("success", r["errMsg"])),
            fail=lambda r: calls.append(("fail", r["errMsg"])),
            complete=lambda r: calls.append(("complete", r["errMsg"])),
        )
    msg = "createPushMessage:fail content is required"
    assert res == {"errMsg": msg}
    assert calls == [("fail", msg), ("complete", msg)]


async def test_a_failure_complete_saw_is_returned_not_raised(daemon: FakeDaemon) -> None:
    """uni: a call with callbacks answers through them (no promise rejects)."""
    completed: list[str] = []
    async with PushClient(daemon.path) as push:
        res = await push.create_push_message(complete=lambda r: completed.append(r["errMsg"]))
    assert res == {"errMsg": "createPushMessage:fail content is required"}
    assert completed == ["createPushMessage:fail content is required"]


async def test_a_failure_no_callback_saw_raises(daemon: FakeDaemon) -> None:
    succeeded: list[str] = []
    async with PushClient(daemon.path) as push:
        with pytest.raises(UniApiError) as info:
            await push.create_push_message(success=lambda r: succeeded.append(r["errMsg"]))
    assert str(info.value) == "createPushMessage:fail content is required"
    assert info.value.result == {"errMsg": "createPushMessage:fail content is required"}
    assert succeeded == []


async def test_async_callbacks_are_awaited(daemon: FakeDaemon) -> None:
    seen: list[str] = []

    async def success(res: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(res["errMsg"])

    async with PushClient(daemon.path) as push:
        await push.create_push_message(content="hi", success=success)
    assert seen == ["createPushMessage:ok"]


async def test_err_msg_forms(daemon: FakeDaemon) -> None:
    """``<api>:ok``, ``<api>:fail <reason>``, and ``request:fail <reason>`` for a request
    the daemon could not read: all are uni answers, failures raise alike."""
    daemon.override["status"] = fail("request", "method must be a non-empty string")
    async with PushClient(daemon.path) as push:
        ok = await push.create_push_message(content="hi", title="T", payload={"k": 1})
        assert ok == {"errMsg": "createPushMessage:ok", "notification_id": "n1"}
        with pytest.raises(UniApiError, match=r"^nope:fail unknown method$"):
            await push._api("nope", {}, None, None, None)
        with pytest.raises(UniApiError) as info:
            await push.status()
    assert info.value.result["errMsg"] == "request:fail method must be a non-empty string"
    create = next(r for r in daemon.requests if r.method == "createPushMessage")
    assert create.params == {"content": "hi", "title": "T", "payload": {"k": 1}}


# listeners ------------------------------------------------------------------------------


async def test_same_callback_twice_is_one_listener(daemon: FakeDaemon) -> None:
    seen: list[dict[str, Any]] = []
    async with PushClient(daemon.path) as push:
        await push.on_push_message(seen.append)
        await push.on_push_message(seen.append)
        await daemon.push(receive(1), "m1")
        await until(lambda: bool(seen))
        await asyncio.sleep(0.05)
    assert seen == [received(1, "m1")]
    assert daemon.methods().count("onPushMessage") == 1


async def test_off_with_a_callback_removes_only_that_one(daemon: FakeDaemon) -> None:
    first: list[Any] = []
    second: list[Any] = []
    async with PushClient(daemon.path) as push:
        await push.on_push_message(first.append)
        await push.on_push_message(second.append)
        await push.off_push_message(first.append)
        assert "offPushMessage" not in daemon.methods()  # one listener is left
        await daemon.push(receive(1), "m1")
        await until(lambda: bool(second))
        await push.off_push_message(second.append)
        await until(lambda: "offPushMessage" in daemon.methods())
    assert first == []
    assert second == [received(1, "m1")]
    assert daemon.listeners == []


async def test_off_without_argument_removes_every_listener(daemon: FakeDaemon) -> None:
    seen: list[Any] = []
    async with PushClient(daemon.path) as push:
        await push.on_push_message(seen.append)
        await push.on_push_message(lambda e: seen.append(("other", e)))
        await push.off_push_message()
        await push.off_push_message()  # nothing left: not sent again
        await daemon.push(receive(1), "m1")
        await asyncio.sleep(0.05)
    assert seen == []
    assert daemon.methods().count("offPushMessage") == 1


async def test_a_listener_that_raises_does_not_end_the_connection(daemon: FakeDaemon) -> None:
    seen: list[Any] = []
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reported.append(ctx))

    def bad(event: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    async with PushClient(daemon.path) as push:
        await push.on_push_message(bad)
        await push.on_push_message(seen.append)
        await daemon.push(receive(1), "m1")
        await until(lambda: bool(seen))
        assert (await push.get_push_client_id())["cid"] == CID
    assert [str(c["exception"]) for c in reported] == ["listener bug"]


# replays and reconnects -----------------------------------------------------------------


async def test_replayed_push_is_dropped_across_a_reconnect(daemon: FakeDaemon) -> None:
    """The daemon restarts and hands m1 on again: the client, subscribing again by
    itself on connect(), shows m1 once and m2 once."""
    seen: list[Any] = []
    push = PushClient(daemon.path)
    await push.connect()
    await push.on_push_message(lambda e: seen.append(e["data"]["payload"]))
    await daemon.push(receive("one"), "m1")
    await until(lambda: seen == ["one"])

    daemon.replay = [Event(receive("one"), "m1"), Event(receive("two"), "m2")]
    await daemon.drop()
    await asyncio.wait_for(push.wait_closed(), 5)
    await push.connect()
    await until(lambda: seen == ["one", "two"])
    await asyncio.sleep(0.05)
    assert seen == ["one", "two"]
    assert daemon.methods().count("onPushMessage") == 2
    assert len(daemon.listeners) == 1
    await push.close()


async def test_a_call_after_the_daemon_restarted_reconnects_and_resubscribes(
    daemon: FakeDaemon,
) -> None:
    seen: list[Any] = []
    async with PushClient(daemon.path) as push:
        await push.on_push_message(seen.append)
        await daemon.drop()
        await asyncio.wait_for(push.wait_closed(), 5)
        assert (await push.get_push_client_id())["cid"] == CID
        await until(lambda: len(daemon.listeners) == 1)
        await daemon.push(receive(2), "m2")
        await until(lambda: bool(seen))
    assert seen == [received(2, "m2")]


async def test_events_without_push_id_are_never_dropped(daemon: FakeDaemon) -> None:
    """Clicks and local events carry no push_id: two clicks are two events."""
    seen: list[Any] = []
    click = {"type": "click", "data": {"title": "T", "content": "C", "payload": None}}
    async with PushClient(daemon.path) as push:
        await push.on_push_message(seen.append)
        await daemon.push(click)
        await daemon.push(click)
        await daemon.push(receive(1), "m1")
        await daemon.push(receive(1), "m1")
        await until(lambda: len(seen) == 3)
        await asyncio.sleep(0.05)
    assert seen == [click, click, received(1, "m1")]


# channels -------------------------------------------------------------------------------


async def test_get_all_channels_answers_channel_ids(daemon: FakeDaemon) -> None:
    got: list[dict[str, Any]] = []
    async with PushClient(daemon.path) as push:
        channels = await push.get_channel_manager().get_all_channels(success=got.append)
    assert channels == ["DcloudChannelID", "news"]
    assert "news" in channels  # what uni-app code does with indexOf
    assert got == [{"errMsg": "getAllChannels:ok", "channels": ["DcloudChannelID", "news"]}]


async def test_get_channel_details_answers_the_settings(daemon: FakeDaemon) -> None:
    completed: list[str] = []
    async with PushClient(daemon.path) as push:
        details = await push.get_channel_manager().get_channel_details(
            complete=lambda r: completed.append(r["errMsg"])
        )
    assert details == DETAILS
    assert completed == ["getChannelDetails:ok"]


async def test_set_push_channel_takes_callbacks(daemon: FakeDaemon) -> None:
    calls: list[str] = []
    async with PushClient(daemon.path) as push:
        manager = push.get_channel_manager()
        res = await manager.set_push_channel(
            channelId="news", channelDesc="News", importance=4, success=lambda r: calls.append("ok")
        )
        bad = await manager.set_push_channel(channelId="x", fail=lambda r: calls.append("fail"))
        with pytest.raises(UniApiError, match="channelDesc"):
            await manager.set_push_channel(channelId="x")
    assert res["errMsg"] == "setPushChannel:ok"
    assert bad["errMsg"].startswith("setPushChannel:fail")
    assert calls == ["ok", "fail"]
    sent = next(r for r in daemon.requests if r.method == "setPushChannel")
    assert sent.params == {"channelId": "news", "channelDesc": "News", "importance": 4}


async def test_get_push_channel_manager_is_the_same_manager(daemon: FakeDaemon) -> None:
    push = PushClient(daemon.path)
    manager = push.get_push_channel_manager()
    assert isinstance(manager, ChannelManager)
    assert manager is push.get_channel_manager()
    assert await manager.get_all_channels() == ["DcloudChannelID", "news"]
    await push.close()


# the daemon's absence -------------------------------------------------------------------


async def test_no_daemon_raises_daemon_unavailable_naming_the_socket() -> None:
    path = short_socket_path()
    push = PushClient(path)
    with pytest.raises(DaemonUnavailable) as info:
        await push.connect()
    assert str(path) in str(info.value)
    with pytest.raises(DaemonUnavailable, match=str(path)):
        await push.get_push_client_id()  # a call connects first, and says the same


async def test_a_daemon_that_goes_away_fails_waiting_calls(daemon: FakeDaemon) -> None:
    daemon.hold.add("getPushClientId")
    push = PushClient(daemon.path)
    await push.connect()
    waiting = asyncio.ensure_future(push.get_push_client_id())
    await until(lambda: "getPushClientId" in daemon.methods())
    await daemon.stop()
    with pytest.raises(DaemonUnavailable, match=str(daemon.path)):
        await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(push.wait_closed(), 5)  # already closed: returns at once
    with pytest.raises(DaemonUnavailable, match="no daemon is listening"):
        await push.status()
    await push.close()


async def test_close_is_idempotent_and_fails_waiting_calls(daemon: FakeDaemon) -> None:
    daemon.hold.add("status")
    push = PushClient(daemon.path)
    await push.connect()
    waiting = asyncio.ensure_future(push.status())
    await until(lambda: "status" in daemon.methods())
    await push.close()
    await asyncio.wait_for(push.close(), 1)
    with pytest.raises(DaemonUnavailable, match="closed"):
        await waiting
    await asyncio.wait_for(push.wait_closed(), 1)


async def test_for_appid_uses_the_default_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    push = PushClient.for_appid("__UNI__X")
    assert push.socket_path == tmp_path / "unipush-bridge" / "__UNI__X.sock"
    assert PushClient(appid="__UNI__X").socket_path == push.socket_path


async def test_close_while_connecting_leaves_the_client_closed(daemon: FakeDaemon) -> None:
    """A close() that races a connect() (here: one held in resubscribing) wins."""
    push = PushClient(daemon.path)
    await push.on_push_message(lambda e: None)
    await push.close()
    daemon.hold.add("onPushMessage")
    connecting = asyncio.ensure_future(push.connect())
    await until(lambda: daemon.methods().count("onPushMessage") == 2)
    await asyncio.wait_for(push.close(), 1)
    with pytest.raises(asyncio.CancelledError):
        await connecting
    await until(lambda: not daemon.connections)

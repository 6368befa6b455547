"""SyncPushClient: the same surface as PushClient (checked, so the two cannot drift),
the same behaviour through its private loop thread, and a close() that always returns."""

from __future__ import annotations

import inspect
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.clients.fakedaemon import CID, DETAILS, FakeDaemon, ThreadedDaemon
from tests.unit.clients.fakedaemon import short_socket_path as short_path
from unipush_bridge.clients import (
    ChannelManager,
    DaemonUnavailable,
    PushClient,
    SyncPushClient,
    UniApiError,
)
from unipush_bridge.clients.push import SyncChannelManager

#: Public names that are plain functions on the async side too.
NOT_ASYNC = {"for_appid", "get_channel_manager", "get_push_channel_manager"}


def surface(cls: type) -> dict[str, list[tuple[str, Any, Any]]]:
    """Public names (and __init__) with their parameters: name, kind, default."""
    names = [n for n in dir(cls) if not n.startswith("_")] + ["__init__"]
    out: dict[str, list[tuple[str, Any, Any]]] = {}
    for name in names:
        attr = getattr(cls, name)
        if isinstance(attr, property):
            out[name] = []
            continue
        params = inspect.signature(attr).parameters.values()
        out[name] = [(p.name, p.kind, p.default) for p in params]
    return out


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [(PushClient, SyncPushClient), (ChannelManager, SyncChannelManager)],
)
def test_sync_and_async_public_surfaces_match(async_cls: type, sync_cls: type) -> None:
    assert surface(sync_cls) == surface(async_cls)
    for name in surface(async_cls):
        a, s = getattr(async_cls, name), getattr(sync_cls, name)
        if isinstance(a, property) or name == "__init__":
            continue
        assert inspect.iscoroutinefunction(a) == (name not in NOT_ASYNC), name
        assert not inspect.iscoroutinefunction(s), name


def test_surface_has_what_uni_code_needs() -> None:
    names = set(surface(SyncPushClient))
    assert {
        "for_appid",
        "connect",
        "close",
        "wait_closed",
        "socket_path",
        "get_push_client_id",
        "on_push_message",
        "off_push_message",
        "create_push_message",
        "get_channel_manager",
        "get_push_channel_manager",
        "status",
        "history",
    } <= names
    assert set(surface(SyncChannelManager)) == {
        "__init__",
        "set_push_channel",
        "get_all_channels",
        "get_channel_details",
    }


def test_callbacks_listeners_and_channels(threaded: ThreadedDaemon) -> None:
    seen: list[Any] = []
    calls: list[tuple[str, str]] = []
    with SyncPushClient(threaded.daemon.path) as client:
        client.on_push_message(seen.append)
        client.on_push_message(seen.append)  # the same callback twice is one listener
        res = client.get_push_client_id(
            success=lambda r: calls.append(("success", r["errMsg"])),
            complete=lambda r: calls.append(("complete", r["errMsg"])),
        )
        failed = client.create_push_message(fail=lambda r: calls.append(("fail", r["errMsg"])))
        with pytest.raises(UniApiError, match="content is required"):
            client.create_push_message()
        event = {"type": "receive", "data": {"title": "T", "content": "C", "payload": 1}}
        threaded.run(threaded.daemon.push(event, "m1"))
        threaded.run(threaded.daemon.push(event, "m1"))
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.005)
        manager = client.get_push_channel_manager()
        assert manager is client.get_channel_manager()
        assert manager.get_all_channels() == ["DcloudChannelID", "news"]
        assert manager.get_channel_details() == DETAILS
        assert manager.set_push_channel(channelId="a", channelDesc="A")["errMsg"] == (
            "setPushChannel:ok"
        )
        assert client.history(1) == [{"title": "t", "content": "c"}]
        assert client.status()["cid"] == CID
        client.off_push_message()
    assert res["cid"] == CID
    assert failed["errMsg"] == "createPushMessage:fail content is required"
    assert calls == [
        ("success", "getPushClientId:ok"),
        ("complete", "getPushClientId:ok"),
        ("fail", "createPushMessage:fail content is required"),
    ]
    assert seen == [{**event, "push_id": "m1"}]
    assert threaded.daemon.methods().count("onPushMessage") == 1


def test_for_appid_connects_to_the_default_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    short = short_path().parent
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short))
    (short / "unipush-bridge").mkdir(mode=0o700)  # private, as the daemon makes it (item 7)
    fake = ThreadedDaemon(short / "unipush-bridge" / "__UNI__X.sock")
    try:
        client = SyncPushClient.for_appid("__UNI__X")
        assert client.socket_path == fake.daemon.path
        assert client.get_push_client_id()["cid"] == CID
        client.close()
    finally:
        fake.close()


def test_double_close_returns_promptly(threaded: ThreadedDaemon) -> None:
    client = SyncPushClient(threaded.daemon.path)
    client.close()
    started = time.monotonic()
    client.close()
    with client:
        pass  # __exit__ closes once more
    assert time.monotonic() - started < 1.0


def test_a_call_after_close_connects_again(threaded: ThreadedDaemon) -> None:
    seen: list[Any] = []
    client = SyncPushClient(threaded.daemon.path)
    client.on_push_message(seen.append)
    client.close()
    assert client.status()["errMsg"] == "status:ok"  # reconnected, and subscribed again
    assert threaded.daemon.methods().count("onPushMessage") == 2
    client.close()


def test_no_daemon_raises_naming_the_socket_and_leaves_no_thread() -> None:
    path = short_path()
    before = threading.active_count()
    with pytest.raises(DaemonUnavailable) as info:
        SyncPushClient(path)
    assert str(path) in str(info.value)
    assert threading.active_count() == before


def test_a_daemon_that_goes_away_fails_a_waiting_call(threaded: ThreadedDaemon) -> None:
    daemon: FakeDaemon = threaded.daemon
    daemon.hold.add("getPushClientId")
    client = SyncPushClient(daemon.path)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_push_client_id()
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while "getPushClientId" not in daemon.methods() and time.monotonic() < deadline:
        time.sleep(0.005)
    threaded.run(daemon.stop())
    caller.join(5)
    client.wait_closed()  # the daemon is gone: returns at once
    client.close()
    assert len(errors) == 1
    assert isinstance(errors[0], DaemonUnavailable)
    assert str(daemon.path) in str(errors[0])


def test_calling_the_client_from_its_own_callback_raises_instead_of_hanging(
    threaded: ThreadedDaemon,
) -> None:
    with SyncPushClient(threaded.daemon.path) as client:
        with pytest.raises(RuntimeError, match="its own callbacks"):
            client.get_push_client_id(success=lambda r: client.status())
        assert client.status()["errMsg"] == "status:ok"  # still usable

"""Public uni-app and uniCloud code, as it is written, against a real gateway and daemon
(the plugin's fixtures: capture server on a private bus). Each test names the public
file it follows; the code is written anew in Python, with uni's runtime as the reference
for what should happen (dcloudio/uni-app packages/uni-api/src/service/plugin/push.ts,
packages/uni-push/src/route.ts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.procs import wait_for
from unipush_bridge.clients import PushClient
from unipush_bridge.clients.pushmanager import get_push_manager
from unipush_bridge.testing.plugin import Unipush


def send(unipush: Unipush, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = unipush.gateway.call("sendMessage", body, unipush.daemon.appid)
    assert status == 200 and answer["errCode"] == 0, answer
    return answer


def listening(unipush: Unipush) -> None:
    unipush.listen()
    wait_for(lambda: unipush.daemon.status()["listeners"] == 1, 10, "the listener")


def test_a_transparent_push_has_no_title_or_content_for_the_page_to_default(
    unipush: Unipush,
) -> None:
    """uni-im's server deletes title and content to send a transparent message
    (uni-im's push helper, find_string id 31330983371: ``delete pushParam.title;
    delete pushParam.content`` for a strategy 3 push),
    so uniCloud's message, JSON of the fields given, has neither; a page's wrapper
    (find_string id 18597441899) re-posts a receive as
    ``createPushMessage({title: appName, content: appName, payload: {}, ...res.data})``.
    With ``"title": "", "content": ""`` in the data, the spread blanked the defaults and
    the call failed with ``content is required``."""
    listening(unipush)
    send(unipush, {"push_clientid": unipush.cid, "payload": {"type": "uni-im", "n": 1}})
    event = unipush.wait_for_event("receive")
    data = event["data"]
    assert data == {
        "unipush_version": "2.0",
        "payload": {"type": "uni-im", "n": 1},
        "__UUID__": event["push_id"],
        "appid": "__UNI__DESKTOP",
    }
    answer = unipush.notify(**{"title": "MyApp", "content": "MyApp", "payload": {}, **data})
    assert answer["errMsg"] == "createPushMessage:ok", answer
    note = unipush.notification(title="MyApp")
    assert note.body == "MyApp"


async def test_python_client_takes_a_datetime_when_as_uni_takes_a_date(
    unipush: Unipush,
) -> None:
    """uni-app's ``when`` is a Date (packages/uni-api/src/protocols/plugin/push.ts:
    ``when?: Date``), and public pages build one (``when: new Date()``); the Python
    client's Date is a datetime. JSON.stringify writes a Date as its UTC ISO text with
    milliseconds; the client does the same for a datetime, in ``when`` and in a
    payload (a database record, as find_string id 54143257128 sends one). Before, the client
    raised TypeError (Object of type datetime is not JSON serializable) and sent
    nothing."""
    when = datetime(2026, 3, 1, 8, 30, 15, 250000, tzinfo=timezone(timedelta(hours=8)))
    async with PushClient(unipush.daemon.socket) as push:
        answer = await push.create_push_message(
            title="提醒", content="会议", when=when, payload={"createdAt": when}
        )
        assert answer["errMsg"] == "createPushMessage:ok", answer
        (entry,) = await push.history()
    assert entry["data"]["when"] == int(when.timestamp() * 1000)
    note = unipush.notification(title="提醒")
    unipush.click(note)
    event = unipush.wait_for_event("click")
    assert event["data"]["payload"] == {"createdAt": "2026-03-01T00:30:15.250Z"}


async def test_python_push_manager_sends_a_datetime_as_unicloud_sends_a_date(
    unipush: Unipush,
) -> None:
    """A cloud function that pushes a database record as the payload, with
    ``request_id: Date.now().toString()`` (find_string id 54143257128: ``payload:
    newMsg``): a Date in such a record goes out as uniCloud's JSON.stringify writes it,
    its ISO text. Ported to the Python push manager with a datetime, it raised
    TypeError before and sent nothing."""
    listening(unipush)
    made = datetime(2026, 3, 1, 0, 30, 15, 250000, tzinfo=UTC)
    push = get_push_manager(unipush.daemon.appid, unipush.gateway.http_url)
    async with push:
        res = await push.sendMessage(
            {
                "push_clientid": unipush.cid,
                "title": "战区频道",
                "content": "你有新的战区通讯",
                "payload": {"_id": "m1", "create_time": made},
                "request_id": str(1772325015250),
            }
        )
    assert res["errCode"] == 0, res
    data = unipush.wait_for_event("receive")["data"]
    assert data["payload"] == {"_id": "m1", "create_time": "2026-03-01T00:30:15.250Z"}


def test_a_receive_turned_into_a_notification_with_defaults_clicks_back_its_url(
    unipush: Unipush,
) -> None:
    """A public App.vue (find_string id 42516566134): on receive,
    ``createPushMessage({title: data.title || 'test', content: data.content || '1234',
    sound: 'system', cover: true, payload: {url: '/pages/index/index'}, success})``; on
    click, ``const {payload = {}} = data`` and ``navigateTo({url: payload.url})``."""
    listening(unipush)
    send(unipush, {"push_clientid": unipush.cid, "title": "订单", "content": "已发货"})
    data = unipush.wait_for_event("receive")["data"]
    assert "payload" not in data  # none was sent
    answer = unipush.notify(
        title=data.get("title") or "test",
        content=data.get("content") or "1234",
        sound="system",
        cover=True,
        payload={"url": "/pages/index/index"},
    )
    assert answer["errMsg"] == "createPushMessage:ok", answer
    unipush.click(unipush.notification(title="订单"))
    clicked = unipush.wait_for_event("click")["data"]
    payload = clicked.get("payload", {})
    assert payload["url"] == "/pages/index/index"


def test_a_channel_the_page_never_made_still_shows_and_clicks_with_the_payload(
    unipush: Unipush,
) -> None:
    """A public how-to (find_string id 71063898199): on receive,
    ``createPushMessage({title, content, payload: res.data.payload, channelId:
    'msg_channel'})`` with no setPushChannel for it; on click,
    ``res.data.payload.id``. Android shows it on the default channel (uni-app x's
    PushManager); so does the daemon, and the click carries the page's channelId."""
    listening(unipush)
    send(
        unipush,
        {
            "push_clientid": unipush.cid,
            "title": "新消息",
            "content": "张三: 在吗",
            "payload": {"id": 42},
        },
    )
    data = unipush.wait_for_event("receive")["data"]
    answer = unipush.notify(
        title=data["title"],
        content=data["content"],
        payload=data["payload"],
        channelId="msg_channel",
    )
    assert answer["errMsg"] == "createPushMessage:ok", answer
    unipush.click(unipush.notification(title="新消息"))
    clicked = unipush.wait_for_event("click")["data"]
    assert clicked["payload"]["id"] == 42
    assert clicked["channelId"] == "msg_channel"


async def test_a_ttl_computed_as_a_float_is_the_same_number_as_in_javascript(
    unipush: Unipush,
) -> None:
    """Server code computes the ttl (find_string id 52922259131, a Getui v2 sender:
    ``"settings": {"ttl": 24 * 3600 * 1000}``); a Python port that writes
    ``1.5 * 3600 * 1000`` sends ``5400000.0``, which is the number 5400000 in JSON as
    uniCloud's JavaScript reads it. Before, the gateway refused it: ``settings.ttl must
    be an integer number of milliseconds``; ``badge: 1.0`` likewise."""
    listening(unipush)
    push = get_push_manager(unipush.daemon.appid, unipush.gateway.http_url)
    async with push:
        res = await push.sendMessage(
            {
                "push_clientid": unipush.cid,
                "title": "t",
                "content": "c",
                "payload": {"n": 1},
                "badge": 1.0,
                "settings": {"ttl": 1.5 * 3600 * 1000},
            }
        )
        assert res["errCode"] == 0, res
        bad = await push.sendMessage(
            {"push_clientid": unipush.cid, "title": "t", "content": "c", "settings": {"ttl": 1.5}}
        )
    assert bad["errMsg"] == "illegal params: settings.ttl must be an integer number of milliseconds"
    assert unipush.wait_for_event("receive")["data"]["badge"] == 1

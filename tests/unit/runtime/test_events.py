"""core.py: uni's routing rule and event shapes, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from unipush_bridge.runtime.core import (
    click_event,
    event_data,
    receive_event,
    wants_screen,
)
from unipush_bridge.wire.gateway import Push, PushMessage, parse_server_frame


def msg(**fields: Any) -> PushMessage:
    return PushMessage.parse({"title": "T", "content": "C", **fields})


def data_of(message: PushMessage) -> dict[str, Any]:
    """The event data of ``message`` as the gateway's message "m1" to app __UNI__T."""
    return event_data(message, "m1", "__UNI__T")


@pytest.mark.parametrize(
    ("force", "listeners", "expected"),
    [
        (False, 0, True),
        (False, 1, False),
        (False, 5, False),
        (True, 0, True),
        (True, 1, True),
        (True, 3, True),
    ],
)
def test_route(force: bool, listeners: int, expected: bool) -> None:
    assert wants_screen(msg(force_notification=force), listeners) is expected


def test_event_data_with_object_payload() -> None:
    assert data_of(msg(payload={"a": 1, "b": [True]})) == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": {"a": 1, "b": [True]},
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_event_data_keeps_a_string_payload_as_given() -> None:
    data = data_of(msg(payload='{"a": 1}'))
    assert data["payload"] == '{"a": 1}'


def test_event_data_leaves_out_what_the_sender_left_out() -> None:
    """uniCloud's message is the JSON of the fields given: a push with no payload has
    none in its data (not null), and uni-im's transparent push (title and content
    deleted) neither title nor content, so a page's ``{title: appName, ...res.data}``
    keeps its default."""
    assert data_of(msg()) == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }
    transparent = PushMessage.parse({"title": "", "content": "", "payload": {"n": 1}})
    assert data_of(transparent) == {
        "unipush_version": "2.0",
        "payload": {"n": 1},
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }
    assert data_of(msg(content="")) == {
        "unipush_version": "2.0",
        "title": "T",
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_force_notification_only_when_true() -> None:
    assert "force_notification" not in data_of(msg(force_notification=False))
    assert data_of(msg(force_notification=True))["force_notification"] is True


def test_extra_fields_ride_along() -> None:
    data = data_of(msg(payload="p", channelId="ch1", category="IM", badge=3))
    assert data == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": "p",
        "channelId": "ch1",
        "category": "IM",
        "badge": 3,
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_taskid_is_not_part_of_the_event() -> None:
    data = data_of(msg(payload="p", taskid="RASS_0123"))
    assert "taskid" not in data
    assert data == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": "p",
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_extra_fields_do_not_override_the_fixed_ones() -> None:
    data = data_of(msg(unipush_version="1.0"))
    assert data["unipush_version"] == "2.0"


def test_extra_of_a_message_built_directly_rides_along() -> None:
    message = PushMessage(title="T", content="C", payload={"k": 1}, extra={"sound": "ring"})
    assert data_of(message) == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": {"k": 1},
        "sound": "ring",
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_extra_from_the_wire_rides_along() -> None:
    frame = parse_server_frame(
        '{"type":"push","seq":1,"id":"m","message":{"title":"T","content":"C",'
        '"payload":"p","taskid":"RASL_1","open_url":"https://x","channelId":"ch","badge":2}}'
    )
    assert isinstance(frame, Push)
    assert frame.message.extra == {"channelId": "ch", "badge": 2}
    assert data_of(frame.message) == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": "p",
        "channelId": "ch",
        "badge": 2,
        "__UUID__": "m1",
        "appid": "__UNI__T",
    }


def test_extra_cannot_override_title_content_or_payload() -> None:
    message = PushMessage(
        title="T",
        content="C",
        payload="p",
        extra={"title": "X", "content": "Y", "payload": "Z", "unipush_version": "9"},
    )
    data = data_of(message)
    assert (data["title"], data["content"], data["payload"]) == ("T", "C", "p")
    assert data["unipush_version"] == "2.0"


def test_event_data_does_not_share_the_extra_mapping() -> None:
    message = msg(sound="a")
    data = data_of(message)
    data["sound"] = "changed"
    assert message.extra == {"sound": "a"}


def test_receive_and_click_events() -> None:
    data = {"unipush_version": "2.0", "title": "T", "content": "C", "payload": None}
    assert receive_event(data) == {"type": "receive", "data": data}
    assert click_event(data) == {"type": "click", "data": data}


def test_uuid_and_appid_sit_beside_title_content_and_payload() -> None:
    """uni's App runtime gives onPushMessage the JSON of html5plus's PushMessage
    (dcloudio/H5P.Android feature/aps/src/io/dcloud/feature/aps/PushMessage.java,
    toJSON: ``__UUID__``, ``title``, ``appid``, ``content``, ``payload``; passed as
    ``data`` by dcloudio/uni-app packages/uni-push/src/plus.ts and
    packages/uni-api/src/service/plugin/push.ts). __UUID__ is the runtime's own (made
    in getMessageUUID, never read from the message); appid is the message's if it has
    one (parseJson's optString("appid")), else the app's."""
    data = event_data(msg(payload="p"), "id-7", "__UNI__APP")
    assert data == {
        "unipush_version": "2.0",
        "title": "T",
        "content": "C",
        "payload": "p",
        "__UUID__": "id-7",
        "appid": "__UNI__APP",
    }
    sender = event_data(msg(__UUID__="forged", appid="__UNI__OTHER"), "id-7", "__UNI__APP")
    assert (sender["__UUID__"], sender["appid"]) == ("id-7", "__UNI__OTHER")
    blank = event_data(msg(appid=""), "id-7", "__UNI__APP")
    assert blank["appid"] == "__UNI__APP"

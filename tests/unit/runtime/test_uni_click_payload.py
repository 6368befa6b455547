"""A local notification's click as uni's runtimes build it (rev-uni).

uni-app x's Android runtime (dcloudio/uni-api
uni_modules/uni-push/utssdk/app-android/push/PushMessage.uts, ``getJsonObject``) keeps a
createPushMessage payload that is a string as ``mPayload`` and, when the notification
is clicked, hands the click ``JSON.parseObject(mPayload)`` if that is a JSON object,
else the string itself. uni-app's 5+ runtime does the same (html5plus PushMessage:
payload text in JSON form is a JSON object, else a String;
https://www.html5plus.org/doc/zh_cn/push.html). Public pages rely on it: they re-post a
receive with ``payload: JSON.stringify(others['payload'])`` and read ``res.data.payload``
in the click (find_string id 30355360144, an App.vue whose click handler goes on with
the object).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.runtime.test_core import sim


def _click_of(params: dict[str, Any]) -> dict[str, Any]:
    s = sim()
    s.listen("a")
    s.run(s.core.create_push_message(params, now=0))
    s.run(s.core.activated(s.shown[0].ticket))
    (event,) = [e for e in s.got["a"] if e["type"] == "click"]
    data: dict[str, Any] = event["data"]
    return data


def test_a_json_object_string_payload_is_an_object_in_the_click() -> None:
    payload = {"id": 7, "response_receive": 1, "to": {"page": "/pages/chat"}}
    data = _click_of({"content": "x", "payload": json.dumps(payload)})
    assert data["payload"] == payload


@pytest.mark.parametrize("text", ["plain text", "123", "[1, 2]", "true", '"quoted"', "{bad"])
def test_other_string_payloads_stay_strings(text: str) -> None:
    """parseObject gives null for anything but an object: the string is kept as is."""
    assert _click_of({"content": "x", "payload": text})["payload"] == text


def test_an_object_payload_is_unchanged() -> None:
    assert _click_of({"content": "x", "payload": {"k": [1, None]}})["payload"] == {"k": [1, None]}


@pytest.mark.parametrize(
    "text",
    ['{"n": NaN}', '{"a": ' * 40 + "1" + "}" * 40, '{"n": 1e999}'],
)
def test_a_string_that_cannot_be_an_event_stays_a_string(text: str) -> None:
    """Too deep for the local API's lines, or a number JSON cannot carry: kept as text."""
    assert _click_of({"content": "x", "payload": text})["payload"] == text


def test_a_lone_surrogate_escape_in_the_text_is_made_well_formed() -> None:
    data = _click_of({"content": "x", "payload": '{"s": "a\\ud800b"}'})
    assert data["payload"] == {"s": "a\ufffdb"}

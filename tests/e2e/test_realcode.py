"""Public uni-app and uniCloud code, as it is written, against a real gateway and daemon
(the plugin's fixtures: capture server on a private bus). Each test names the public
file it follows; the code is written anew in Python, with uni's runtime as the reference
for what should happen (dcloudio/uni-app packages/uni-api/src/service/plugin/push.ts,
packages/uni-push/src/route.ts)."""

from __future__ import annotations

from typing import Any

from tests.procs import wait_for
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
    data = unipush.wait_for_event("receive")["data"]
    assert data == {"unipush_version": "2.0", "payload": {"type": "uni-im", "n": 1}}
    answer = unipush.notify(**{"title": "MyApp", "content": "MyApp", "payload": {}, **data})
    assert answer["errMsg"] == "createPushMessage:ok", answer
    note = unipush.notification(title="MyApp")
    assert note.body == "MyApp"

"""The Python client hands each listener its own click object, as uni does.

uni's invokePushCallback (dcloudio/uni-app packages/uni-api/src/service/plugin/push.ts)
builds one ``receive`` object for all listeners (so ``res.stopped`` set by one reaches
the loop) but calls each listener with a new ``{type: 'click', data}``: what one
listener writes on its click object (``res.stopped``, a flag of its own) is not seen by
the next. The browser SDK does the same (js/sdk dispatch)."""

from __future__ import annotations

from typing import Any

from unipush_bridge.clients.push import PushClient


async def test_each_click_listener_gets_its_own_object() -> None:
    push = PushClient("/nonexistent/unipush.sock")
    seen: list[dict[str, Any]] = []

    def first(res: dict[str, Any]) -> None:
        res["stopped"] = True
        res["handled_by"] = "first"

    push._listeners += [first, lambda res: seen.append(dict(res))]
    push._dispatch({"type": "click", "data": {"payload": {"k": 1}}}, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "click", "data": {"payload": {"k": 1}}}]


async def test_a_receive_object_is_shared_so_stopped_ends_it() -> None:
    push = PushClient("/nonexistent/unipush.sock")
    seen: list[str] = []

    def first(res: dict[str, Any]) -> None:
        seen.append("first")
        res["stopped"] = True

    push._listeners += [first, lambda res: seen.append("second")]
    push._dispatch({"type": "receive", "data": {}}, None, None)  # type: ignore[arg-type]
    assert seen == ["first"]

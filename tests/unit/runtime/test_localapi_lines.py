"""issue 10 item 16 (and the local half of item 5): hostile lines on the local API,
over a real Unix socket. Each is answered with the protocol's error shape
(``{"id": ..., "result": {"errMsg": "request:fail <reason>"}}``) and the connection
stays usable; a line too long to frame is answered, then the connection closes. No
line may end in an unhandled exception ("Unhandled exception in
client_connected_cb", "Task exception was never retrieved")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.runtime.test_localapi import (
    CID,
    WAIT,
    ApiClient,
    FakeApi,
    api,
    client,
    connect,
    server,
    sock_path,
)
from unipush_bridge.runtime.localapi import LocalApiServer
from unipush_bridge.wire import local as wire

__all__ = ["api", "client", "server", "sock_path"]  # fixtures used by name


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What asyncio would log as unhandled; every test here ends with none."""
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    yield seen
    await asyncio.sleep(0.05)  # let a failed task be collected
    import gc

    gc.collect()
    assert not seen, [c.get("message") for c in seen]


HOSTILE = [
    pytest.param(
        b'{"id": 1, "method": "status\xff"}\n',
        "request is not valid UTF-8 (byte 0xff at offset 27)",
        id="invalid-utf8",
    ),
    pytest.param(b"\xff\xfe{}\n", "request is not valid UTF-8 (byte 0xff at offset 0)", id="bom"),
    pytest.param(
        b"[" * 100_000 + b"\n", "request is nested more than 32 levels deep", id="brackets"
    ),
    pytest.param(
        b'{"id": ' + b"9" * 5000 + b', "method": "status"}\n',
        "a number in the request has more than 4300 digits",
        id="5000-digits",
    ),
    pytest.param(
        b'{"id": "\\ud800", "method": "status"}\n',
        "a string in the request holds a lone surrogate (U+D800), which is not text",
        id="surrogate-id",
    ),
    pytest.param(
        b'{"id": 1, "method": "\\udc00"}\n',
        "a string in the request holds a lone surrogate (U+DC00), which is not text",
        id="surrogate-method",
    ),
    pytest.param(
        b'{"method": "ack", "params": {"push_ids": ["\\ud800"]}}\n',
        "a string in the request holds a lone surrogate (U+D800), which is not text",
        id="surrogate-ack",
    ),
    pytest.param(
        b'{"id": 1, "method": "createPushMessage", "params": {"content": "x", "payload": '
        + b"[" * 900
        + b"]" * 900
        + b"}}\n",
        "request is nested more than 32 levels deep",
        id="deep-params",
    ),
    pytest.param(
        b'{"id": 1, "method": "status", "params": {"x": NaN}}\n',
        "request is not JSON: NaN is not JSON",
        id="nan",
    ),
    pytest.param(
        b'{"id": 1, "method": "createPushMessage", "params": {"content": "x", '
        b'"payload": -1e400}}\n',
        "request is not JSON: -1e400 is too large for a number (at most about 1.8e308)",
        id="past-a-double",
    ),
]


@pytest.mark.parametrize(("line", "reason"), HOSTILE)
async def test_a_hostile_line_is_answered_and_the_connection_stays(
    client: ApiClient, line: bytes, reason: str
) -> None:
    """issue 10 item 16: answered with the rule, never dropped, never a traceback."""
    await client.send_line(line)
    got = await client.answer()
    assert got.result == {"errMsg": f"request:fail {reason}"}
    assert got.id is None
    assert (await client.call("getPushClientId"))["cid"] == CID  # still usable


async def test_every_answer_is_valid_utf8_json(client: ApiClient) -> None:
    """issue 10 item 16: what the daemon writes always parses as strict UTF-8 JSON."""
    for line, _reason in [p.values for p in HOSTILE]:
        await client.send_line(line)  # type: ignore[arg-type]
        raw = await asyncio.wait_for(client.reader.readline(), WAIT)
        json.loads(raw.decode("utf-8"))


async def test_a_line_too_long_to_frame_is_answered_then_closed(client: ApiClient) -> None:
    """issue 10 item 16: past MAX_LINE the next line's start cannot be found, so the
    daemon says why and closes (before: closed with nothing said)."""
    client.writer.write(b'{"id": 1, "method": "status", "params": {"x": "' + b"x" * wire.MAX_LINE)
    got = await client.answer()
    assert got.result == {
        "errMsg": f"request:fail line is over {wire.MAX_LINE} bytes; closing the connection"
    }
    assert await asyncio.wait_for(client.reader.read(), WAIT) == b""


async def test_an_answer_that_cannot_be_encoded_fails_that_call_only(
    server: LocalApiServer, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 10 items 5 and 16: a result the encoder cannot write (here: nested past
    the recursion limit, as stored history could be) becomes that call's fail answer."""
    deep: list[Any] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    monkeypatch.setattr(api, "history", lambda limit: [{"data": deep}])
    c = await connect(server.path)
    try:
        assert await c.call("history") == {
            "errMsg": "history:fail internal error: the answer cannot be encoded (RecursionError)"
        }
        assert (await c.call("status"))["errMsg"] == "status:ok"
    finally:
        await c.close()


async def test_an_event_that_cannot_be_encoded_is_skipped_and_counts_as_held(
    client: ApiClient, api: FakeApi
) -> None:
    """issue 10 item 5 (daemon half): an unencodable event is logged and skipped for
    this listener; the next events flow and held() does not wait for it."""
    await client.call("onPushMessage", {"ack": True})
    (listener,) = api.listeners
    deep: list[Any] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    listener.deliver({"type": "receive", "data": {"badge": deep}}, push_id="deep")
    listener.deliver({"type": "receive", "data": {"n": float("nan")}}, push_id="nan")
    listener.deliver({"type": "receive", "data": {"n": 1}}, push_id="ok")
    got = await client.line()
    assert isinstance(got, wire.Event) and got.push_id == "ok"
    await client.send_line(wire.encode_ack(["ok"]))
    assert await asyncio.wait_for(listener.held(("deep", "nan", "ok")), WAIT) is True


def test_fit_in_line_keeps_order_and_whole_items_within_the_budget() -> None:
    """A history answer is held to one line: each entry whole, newest first, and one
    too large for what is left costs only itself."""
    items = [{"n": 0}, {"n": 1, "big": "x" * 900}, {"n": 2, "big": "y" * 200}, {"n": 3}]
    kept, left_out = wire.fit_in_line(items, budget=400)
    assert [i["n"] for i in kept] == [0, 2, 3] and left_out == 1
    assert wire.fit_in_line(items, budget=5) == ([], 4)
    assert wire.fit_in_line(items) == (items, 0)

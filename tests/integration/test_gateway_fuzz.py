"""Property-based fuzzing of the gateway's HTTP API: whatever arrives, the answer is
uni's envelope with a status of its class, never a 500, and the gateway lives on."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unipush_bridge.gateway import methods
from unipush_bridge.gateway.access import GatewayConfig
from unipush_bridge.gateway.send import TARGET_KEYS
from unipush_bridge.gateway.server import Gateway

ALLOWED = {200, 400, 401, 404, 429}
NAMES = ["sendMessage", *methods.METHODS, *methods.NOT_SUPPORTED]


class ThreadedGateway:
    """The gateway on its own loop in a thread, so sync hypothesis tests can call it."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = Gateway(
            GatewayConfig(port=0, data_dir=data_dir, rate_limit=0, broadcast_per_minute=0)
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedGateway:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.gateway.start(), self.loop).result(10)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        asyncio.run_coroutine_threadsafe(self.gateway.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedGateway]:
    with ThreadedGateway(tmp_path_factory.mktemp("fuzz")) as gateway:
        yield gateway


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
field_values = (
    scalars
    | st.lists(st.text(max_size=40), max_size=4)
    | st.dictionaries(st.text(max_size=8), scalars, max_size=3)
)
send_bodies = st.fixed_dictionaries(
    {},
    optional={
        key: field_values
        for key in (
            *TARGET_KEYS,
            "title",
            "content",
            "payload",
            "force_notification",
            "request_id",
            "group_name",
            "open_url",
            "settings",
            "badge",
            "sound",
            "channelId",
            "category",
        )
    },
)


def check(status: int, answer: Any) -> None:
    assert status in ALLOWED, (status, answer)
    assert isinstance(answer, dict) and {"errCode", "errMsg", "data"} <= set(answer)
    assert (answer["errCode"] == 0) == (status == 200), answer
    if status != 200:
        assert answer["errCode"].startswith("uni-cloud-push-error-")
        assert answer["errMsg"]


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    method=st.sampled_from(NAMES)
    | st.text(min_size=1, max_size=20).filter(
        lambda s: "/" not in s and "?" not in s and "#" not in s and s.isprintable()
    ),
    body=json_values,
)
def test_any_json_to_any_method(gw: ThreadedGateway, method: str, body: Any) -> None:
    from urllib.parse import quote

    status, answer = gw.post(f"/api/__UNI__F/{quote(method)}", json.dumps(body).encode())
    check(status, answer)


@FUZZ
@given(body=send_bodies)
def test_send_message_shaped_bodies(gw: ThreadedGateway, body: dict[str, Any]) -> None:
    status, answer = gw.post("/api/__UNI__F/sendMessage", json.dumps(body).encode())
    check(status, answer)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_raw_bytes(gw: ThreadedGateway, raw: bytes) -> None:
    status, answer = gw.post("/api/__UNI__F/sendMessage", raw)
    check(status, answer)


def test_the_gateway_still_serves_after_the_fuzzing(gw: ThreadedGateway) -> None:
    status, answer = gw.post("/api/__UNI__F/getTodayReport", b"")
    assert status == 200 and answer["errCode"] == 0


# issue 10 items 15 (HTTP half) and 5 (gateway half): bytes and values that used to
# answer 500 with a traceback -------------------------------------------------------


def raw_exchange(gw: ThreadedGateway, request: bytes) -> tuple[int, Any]:
    """A request written byte for byte (http.client refuses to send some of these)."""
    import socket

    with socket.create_connection(("127.0.0.1", gw.gateway.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else body


def post_bytes(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


ALLOWED_EDGE = ALLOWED | {403, 408, 415, 421}


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff\xfe\xfd", b"Bearer \xed\xa0\x80", b"\x80", "Bearer é".encode()],
)
def test_non_utf8_authorization_bytes_answer_400(gw: ThreadedGateway, authorization: bytes) -> None:
    """issue 10 item 15: before, str.encode() of the surrogate-escaped header raised
    and the caller got a 500 with the gateway's traceback in its log."""
    status, answer = raw_exchange(
        gw,
        post_bytes(
            b"/api/__UNI__F/getTodayReport", b"", b"Authorization: " + authorization + b"\r\n"
        ),
    )
    assert status in (200, 400, 401), (status, answer)
    check(status, answer)


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "\\ud800", "content": "c", "payload": "p"}',
        '{"title": "t", "content": "\\udc00x", "payload": "p"}',
        '{"title": "t", "content": "c", "payload": {"k": "\\ud83d"}}',
        '{"title": "t", "content": "c", "payload": {"\\udfff": 1}}',
        '{"title": "t", "content": "c", "payload": "p", "sound": "\\ud800"}',
    ],
)
def test_lone_surrogates_in_json_strings_answer_400(gw: ThreadedGateway, text: str) -> None:
    """issue 10 item 15: "\\ud800" parses to a lone surrogate that no encoder takes later
    (a 500 before); the answer names the field."""
    status, answer = gw.post("/api/__UNI__F/sendMessage", text.encode())
    assert status == 400, answer
    assert "lone surrogate" in answer["errMsg"]


def test_lone_surrogates_in_any_method(gw: ThreadedGateway) -> None:
    """issue 10 item 15: every method's body is checked, not only sendMessage's."""
    status, answer = gw.post("/api/__UNI__F/cidBindAlias", b'[{"cid": "a", "alias": "\\ud800"}]')
    assert status == 400 and "lone surrogate" in answer["errMsg"], answer


@pytest.mark.parametrize(
    "path", [b"/api/%ED%A0%80/getTodayReport", b"/api/__UNI__F/%ff%fe", b"/api/\xff/getTodayReport"]
)
def test_bad_bytes_in_the_path(gw: ThreadedGateway, path: bytes) -> None:
    """issue 10 item 15: percent-escapes that are not UTF-8 in the appId or method."""
    status, answer = raw_exchange(gw, post_bytes(path, b""))
    assert status in (200, 400, 404), (status, answer)  # yarl keeps bad escapes as text
    if isinstance(answer, dict):
        check(status, answer)


def test_a_body_that_is_not_utf8_answers_400(gw: ThreadedGateway) -> None:
    """issue 10 item 15."""
    status, answer = gw.post("/api/__UNI__F/sendMessage", b'{"title": "\xff"}')
    assert status == 400 and "not UTF-8" in answer["errMsg"], answer


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("depth", [970, 975, 5000])
@pytest.mark.parametrize("field", ["badge", "sound", "category", "channelId", "payload"])
def test_deep_nesting_answers_400(gw: ThreadedGateway, field: str, depth: int) -> None:
    """issue 10 item 5: ~970 deep passed the gateway and broke the daemon; 975 was a
    500 here. Now any body nests at most 32 deep, and the passed-on fields are flat."""
    body = f'{{"title": "t", "content": "c", "payload": "p", "{field}": {nested(depth)}}}'
    body = body.replace('"payload": "p", "payload"', '"payload"')
    status, answer = gw.post("/api/__UNI__F/sendMessage", body.encode())
    assert status == 400, answer
    assert answer["errCode"].startswith("uni-cloud-push-error-")
    assert "deep" in answer["errMsg"] or field in answer["errMsg"], answer


@pytest.mark.parametrize("field", ["badge", "sound", "category", "channelId"])
def test_the_passed_on_fields_are_flat(gw: ThreadedGateway, field: str) -> None:
    """issue 10 item 5: one level is already refused, naming the field and the rule."""
    body = {"title": "t", "content": "c", "payload": "p", field: [[1]]}
    status, answer = gw.post("/api/__UNI__F/sendMessage", json.dumps(body).encode())
    assert status == 400 and f"{field} must be" in answer["errMsg"], answer


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
surrogate_values = st.recursive(
    st.none() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {"title": any_text, "content": any_text, "payload": surrogate_values},
        optional={k: surrogate_values for k in ("badge", "sound", "category", "channelId")},
    )
)
def test_any_unicode_including_surrogates(gw: ThreadedGateway, body: dict[str, Any]) -> None:
    """issue 10 item 15: whatever a JSON \\u escape can spell, never a 500."""
    status, answer = gw.post("/api/__UNI__F/sendMessage", json.dumps(body).encode())
    check(status, answer)


@FUZZ
@given(raw=st.binary(max_size=60))
def test_raw_header_bytes(gw: ThreadedGateway, raw: bytes) -> None:
    """issue 10 item 15: any bytes in a header value answer a status of its class."""
    value = raw.replace(b"\r", b"").replace(b"\n", b"")
    status, answer = raw_exchange(
        gw, post_bytes(b"/api/__UNI__F/getTodayReport", b"", b"Authorization: " + value + b"\r\n")
    )
    assert status in ALLOWED_EDGE, (status, answer)


@pytest.mark.parametrize(
    "authorization", [b"Bearer \xff\xfe\xfd", b"Bearer \xed\xa0\x80", b"\x80", "Bearer é".encode()]
)
async def test_non_utf8_authorization_with_a_secret_answers_400(
    tmp_path: Path, authorization: bytes
) -> None:
    """issue 10 item 15: with a server_secret set, the header is compared as bytes; a
    surrogate-escaped value made that raise (a 500 and a traceback in the log)."""
    import asyncio

    from tests.gatewaykit import running_gateway

    async with running_gateway(tmp_path, server_secret="s" * 16) as kit:
        assert kit.gateway.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", kit.gateway.port)
        writer.write(
            post_bytes(
                b"/api/__UNI__F/getTodayReport", b"{}", b"Authorization: " + authorization + b"\r\n"
            )
        )
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    status = int(data.split()[1])
    assert status in (400, 401), data
    check(status, json.loads(data.partition(b"\r\n\r\n")[2]))

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

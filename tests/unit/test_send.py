"""gateway/send.py: sendMessage's body rules, errCodes and errMsgs."""

from __future__ import annotations

from typing import Any

import pytest

from unipush_bridge.gateway.send import (
    DEFAULT_TTL_MS,
    MAX_CIDS,
    MAX_TTL_MS,
    SendRequest,
    UniError,
    parse_send_message,
)

CID = "0123456789abcdef0123456789abcdef"
#: Marks a field to leave out of the body.
DROP = object()


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "push_clientid": CID,
        "title": "T",
        "content": "C",
        "payload": {"k": "v"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


CIDS_RULE = "must be a non-empty string or a list of them"
TTL_TYPE = "must be an integer number of milliseconds"
TTL_RANGE = f"must be -1 or between 0 and {MAX_TTL_MS}"
RID_RULE = "must be a string of 10 to 32 characters"


@pytest.mark.parametrize(
    ("overrides", "err_msg"),
    [
        ({"push_clientid": DROP}, "illegal params: push_clientid is required"),
        ({"push_clientid": None}, "illegal params: push_clientid is required"),
        ({"push_clientid": 5}, f"illegal params: push_clientid {CIDS_RULE}"),
        ({"push_clientid": {"a": 1}}, f"illegal params: push_clientid {CIDS_RULE}"),
        ({"push_clientid": ""}, f"illegal params: push_clientid {CIDS_RULE}"),
        ({"push_clientid": [CID, 3]}, f"illegal params: push_clientid {CIDS_RULE}"),
        ({"push_clientid": [CID, ""]}, f"illegal params: push_clientid {CIDS_RULE}"),
        ({"push_clientid": []}, "illegal params: push_clientid must not be an empty list"),
        (
            {"push_clientid": [f"{i:032x}" for i in range(MAX_CIDS + 1)]},
            "illegal params: push_clientid must list at most 500 cids",
        ),
        ({"title": DROP}, "illegal params: title is required"),
        ({"title": ""}, "illegal params: title is required"),
        ({"title": 5}, "illegal params: title must be a string"),
        ({"title": ["t"]}, "illegal params: title must be a string"),
        ({"content": DROP}, "illegal params: content is required"),
        ({"content": None}, "illegal params: content is required"),
        ({"content": {"x": 1}}, "illegal params: content must be a string"),
        ({"payload": DROP}, "illegal params: payload is required (a string or an object)"),
        ({"payload": ""}, "illegal params: payload is required (a string or an object)"),
        ({"payload": 5}, "illegal params: payload must be a string or an object"),
        ({"payload": [1, 2]}, "illegal params: payload must be a string or an object"),
        ({"payload": True}, "illegal params: payload must be a string or an object"),
        ({"force_notification": "true"}, "illegal params: force_notification must be a boolean"),
        ({"force_notification": 1}, "illegal params: force_notification must be a boolean"),
        ({"request_id": "a" * 9}, f"illegal params: request_id {RID_RULE}"),
        ({"request_id": "a" * 33}, f"illegal params: request_id {RID_RULE}"),
        ({"request_id": ""}, f"illegal params: request_id {RID_RULE}"),
        ({"request_id": 12345678901}, f"illegal params: request_id {RID_RULE}"),
        ({"settings": "fast"}, "illegal params: settings must be an object"),
        ({"settings": {"ttl": "1000"}}, f"illegal params: settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": True}}, f"illegal params: settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": 1.5}}, f"illegal params: settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": None}}, f"illegal params: settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": -2}}, f"illegal params: settings.ttl {TTL_RANGE}"),
        ({"settings": {"ttl": MAX_TTL_MS + 1}}, f"illegal params: settings.ttl {TTL_RANGE}"),
    ],
)
def test_invalid_bodies(overrides: dict[str, Any], err_msg: str) -> None:
    with pytest.raises(UniError) as info:
        parse_send_message(body(**overrides))
    err = info.value
    assert err.err_code == 20001
    assert err.err_msg == err_msg
    assert err.status == 400
    assert err.envelope() == {"errCode": 20001, "errMsg": err_msg, "data": None}


@pytest.mark.parametrize("value", [None, [], "body", 5, [{"push_clientid": CID}]])
def test_non_object_body(value: Any) -> None:
    with pytest.raises(UniError) as info:
        parse_send_message(value)
    assert info.value.err_code == 1
    assert info.value.err_msg == "the argument must be an object"
    assert info.value.envelope() == {
        "errCode": 1,
        "errMsg": "the argument must be an object",
        "data": None,
    }


def test_minimal_body() -> None:
    assert parse_send_message(body()) == SendRequest(
        cids=(CID,),
        message={"title": "T", "content": "C", "payload": {"k": "v"}},
        request_id=None,
        ttl_ms=DEFAULT_TTL_MS,
    )
    assert DEFAULT_TTL_MS == 3_600_000


def test_string_payload() -> None:
    assert parse_send_message(body(payload="raw")).message["payload"] == "raw"


def test_cid_list_is_deduplicated_in_order() -> None:
    req = parse_send_message(body(push_clientid=["b", "a", "b", "c", "a"]))
    assert req.cids == ("b", "a", "c")


def test_exactly_max_cids_is_allowed() -> None:
    cids = [f"{i:032x}" for i in range(MAX_CIDS)]
    assert parse_send_message(body(push_clientid=cids)).cids == tuple(cids)


def test_duplicates_count_towards_the_limit_before_dedup() -> None:
    with pytest.raises(UniError):
        parse_send_message(body(push_clientid=[CID] * (MAX_CIDS + 1)))


@pytest.mark.parametrize(
    ("settings", "ttl"),
    [
        (DROP, DEFAULT_TTL_MS),
        ({}, DEFAULT_TTL_MS),
        ({"ttl": -1}, -1),
        ({"ttl": 0}, 0),
        ({"ttl": MAX_TTL_MS}, 259_200_000),
        ({"ttl": 5000, "other": 1}, 5000),
    ],
)
def test_ttl(settings: Any, ttl: int) -> None:
    assert parse_send_message(body(settings=settings)).ttl_ms == ttl


@pytest.mark.parametrize("request_id", ["a" * 10, "b" * 32, "req-2024-0001"])
def test_request_id_bounds(request_id: str) -> None:
    assert parse_send_message(body(request_id=request_id)).request_id == request_id


def test_carried_fields() -> None:
    req = parse_send_message(
        body(
            force_notification=True,
            open_url="https://example.org",
            sound="ding",
            category="IM",
            badge=2,
            channelId="ch1",
            unknown_field="dropped",
            request_id="request-id-1",
        )
    )
    assert req.message == {
        "title": "T",
        "content": "C",
        "payload": {"k": "v"},
        "force_notification": True,
        "open_url": "https://example.org",
        "sound": "ding",
        "category": "IM",
        "badge": 2,
        "channelId": "ch1",
    }
    assert req.request_id == "request-id-1"


def test_force_notification_false_is_kept_as_false() -> None:
    assert parse_send_message(body(force_notification=False)).message["force_notification"] is False


def test_none_carried_fields_are_left_out() -> None:
    message = parse_send_message(body(channelId=None, sound=None)).message
    assert "channelId" not in message
    assert "sound" not in message

"""gateway/send.py: sendMessage's body rules, errCodes and errMsgs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gatewaykit import UNI_PUSH_ADMIN_FORM
from unipush_bridge.gateway.errors import ILLEGAL, NOT_OBJECT, UniError
from unipush_bridge.gateway.send import (
    CARRIED,
    DEFAULT_TTL_MS,
    MAX_DEVICES,
    MAX_LIST,
    MAX_TTL_MS,
    RELAXED,
    STRICT,
    TARGET_KEYS,
    Limits,
    SendRequest,
    Target,
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


def untargeted(**overrides: Any) -> dict[str, Any]:
    return body(**{"push_clientid": DROP, **overrides})


def refused(value: Any, limits: Limits = STRICT) -> UniError:
    with pytest.raises(UniError) as info:
        parse_send_message(value, limits)
    return info.value


def assert_illegal(err: UniError, err_msg: str) -> None:
    assert err.err_code == ILLEGAL == 20001
    assert err.err_msg == err_msg
    assert str(err) == err_msg
    assert err.status == 400
    assert err.envelope() == {
        "errCode": "uni-cloud-push-error-20001",
        "errMsg": err_msg,
        "data": None,
    }


LIST_RULE = "must be a non-empty string or a list of them"
TTL_TYPE = "must be an integer number of milliseconds"
TTL_RANGE = f"must be -1 or between 0 and {MAX_TTL_MS}"
RID_RULE = "must be a string of 10 to 32 characters"
STRICT_HINT = "(uni-push's limit; set strict_limits = false to relax it)"
GROUP_RULE = "must be 1 to 100 letters, digits, '_', '-' or '.' (no special characters)"
URL_SCHEME = "must be an http:// or https:// URL"
URL_LENGTH = "must be shorter than 300 characters"
TAG_RULE = "must be one tag: a string, or a list of one string"


def ids(n: int) -> list[str]:
    return [f"{i:032x}" for i in range(n)]


@pytest.mark.parametrize(
    ("overrides", "err_msg"),
    [
        # targets
        ({"push_clientid": 5}, f"push_clientid {LIST_RULE}"),
        ({"push_clientid": {"a": 1}}, f"push_clientid {LIST_RULE}"),
        ({"push_clientid": [CID, 3]}, f"push_clientid {LIST_RULE}; item 1 is 3"),
        ({"push_clientid": [CID, ""]}, f'push_clientid {LIST_RULE}; item 1 is ""'),
        ({"push_clientid": [CID, None]}, f"push_clientid {LIST_RULE}; item 1 is null"),
        (
            {"push_clientid": [CID, {"cid": "x" * 60}]},
            f'push_clientid {LIST_RULE}; item 1 is {{"cid": "{"x" * 28}...',
        ),
        ({"push_clientid": True}, f"push_clientid {LIST_RULE}"),
        (
            {"push_clientid": ids(1001)},
            "push_clientid must list at most 1000 values",
        ),
        (
            {"push_clientid": DROP, "getui_alias": ids(1001)},
            "getui_alias must list at most 1000 values",
        ),
        (
            {"push_clientid": DROP, "user_id": ids(501)},
            "user_id must list at most 500 values",
        ),
        (
            {"push_clientid": DROP, "user_tag": ids(501)},
            "user_tag must list at most 500 values",
        ),
        (
            {"push_clientid": DROP, "device_id": ids(501)},
            "device_id must list at most 500 values",
        ),
        ({"push_clientid": DROP, "getui_alias": [1]}, f"getui_alias {LIST_RULE}; item 0 is 1"),
        ({"push_clientid": DROP, "user_id": 7}, f"user_id {LIST_RULE}"),
        ({"push_clientid": DROP, "user_tag": [""]}, f'user_tag {LIST_RULE}; item 0 is ""'),
        ({"push_clientid": DROP, "device_id": {"d": 1}}, f"device_id {LIST_RULE}"),
        (
            {"push_clientid": DROP, "getui_custom_tag": ["vip", "gold"]},
            f"getui_custom_tag {TAG_RULE}",
        ),
        ({"push_clientid": DROP, "getui_custom_tag": 5}, f"getui_custom_tag {TAG_RULE}"),
        ({"push_clientid": DROP, "getui_custom_tag": [""]}, f"getui_custom_tag {TAG_RULE}"),
        # texts
        (
            {"title": DROP, "content": "", "payload": DROP},
            "payload is required when title and content are left out",
        ),
        ({"title": 5}, "title must be a string"),
        ({"title": ["t"]}, "title must be a string"),
        ({"content": {"x": 1}}, "content must be a string"),
        ({"payload": 5}, "payload must be a string or an object"),
        ({"payload": [1, 2]}, "payload must be a string or an object"),
        ({"payload": True}, "payload must be a string or an object"),
        ({"title": "x" * 21}, f"title must be at most 20 characters {STRICT_HINT}"),
        ({"content": "x" * 51}, f"content must be at most 50 characters {STRICT_HINT}"),
        (
            {"payload": "x" * 3073},
            f"payload must be at most 3072 characters {STRICT_HINT} (as JSON text)",
        ),
        # options
        ({"force_notification": "true"}, "force_notification must be a boolean"),
        ({"force_notification": 1}, "force_notification must be a boolean"),
        ({"open_url": "ftp://example.org"}, f"open_url {URL_SCHEME}"),
        ({"open_url": "example.org"}, f"open_url {URL_SCHEME}"),
        ({"open_url": "HTTP//x"}, f"open_url {URL_SCHEME}"),
        ({"open_url": "javascript:alert(1)"}, f"open_url {URL_SCHEME}"),
        ({"open_url": 5}, f"open_url {URL_SCHEME}"),
        ({"open_url": "https://" + "a" * 292}, f"open_url {URL_LENGTH}"),
        ({"request_id": "a" * 9}, f"request_id {RID_RULE}"),
        ({"request_id": "a" * 33}, f"request_id {RID_RULE}"),
        ({"request_id": 12345678901}, f"request_id {RID_RULE}"),
        ({"group_name": "g" * 101}, f"group_name {GROUP_RULE}"),
        ({"group_name": "a b"}, f"group_name {GROUP_RULE}"),
        ({"group_name": "a/b"}, f"group_name {GROUP_RULE}"),
        ({"group_name": "a#b"}, f"group_name {GROUP_RULE}"),
        ({"group_name": "a;drop"}, f"group_name {GROUP_RULE}"),
        ({"group_name": 5}, f"group_name {GROUP_RULE}"),
        ({"group_name": ["g"]}, f"group_name {GROUP_RULE}"),
        ({"settings": "fast"}, "settings must be an object"),
        ({"settings": [1]}, "settings must be an object"),
        ({"settings": {"ttl": "1000"}}, f"settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": True}}, f"settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": 1.5}}, f"settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": None}}, f"settings.ttl {TTL_TYPE}"),
        ({"settings": {"ttl": -2}}, f"settings.ttl {TTL_RANGE}"),
        ({"settings": {"ttl": MAX_TTL_MS + 1}}, f"settings.ttl {TTL_RANGE}"),
    ],
)
def test_invalid_bodies(overrides: dict[str, Any], err_msg: str) -> None:
    assert_illegal(refused(body(**overrides)), f"illegal params: {err_msg}")


@pytest.mark.parametrize("value", [None, [], "body", 5, True, [{"push_clientid": CID}]])
def test_non_object_body(value: Any) -> None:
    err = refused(value)
    assert err.err_code == NOT_OBJECT == 1
    assert err.err_msg == "the argument must be an object"
    assert err.status == 400
    assert err.envelope() == {
        "errCode": "uni-cloud-push-error-1",
        "errMsg": "the argument must be an object",
        "data": None,
    }


def test_minimal_body() -> None:
    assert parse_send_message(body()) == SendRequest(
        target=Target("push_clientid", (CID,)),
        message={"title": "T", "content": "C", "payload": {"k": "v"}},
        request_id=None,
        ttl_ms=DEFAULT_TTL_MS,
        group_name=None,
    )
    assert DEFAULT_TTL_MS == 3_600_000
    assert parse_send_message(body()).cids == (CID,)


def test_string_payload() -> None:
    assert parse_send_message(body(payload="raw")).message["payload"] == "raw"


def test_default_limits_are_strict() -> None:
    parse_send_message(body(title="x" * 20))
    with pytest.raises(UniError):
        parse_send_message(body(title="x" * 21))


# targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "empty",
    [
        {},
        {"push_clientid": None},
        {"push_clientid": ""},
        {"push_clientid": []},
        {"getui_alias": "", "user_id": [], "device_id": None, "getui_custom_tag": ""},
    ],
)
def test_no_target_means_broadcast(empty: dict[str, Any]) -> None:
    req = parse_send_message(untargeted(**empty))
    assert req.target == Target("broadcast")
    assert req.target.values == ()
    assert req.cids == ()


@pytest.mark.parametrize(
    "key", ["push_clientid", "getui_alias", "user_id", "user_tag", "device_id"]
)
def test_list_targets(key: str) -> None:
    req = parse_send_message(untargeted(**{key: "one"}))
    assert req.target == Target(key, ("one",))
    req = parse_send_message(untargeted(**{key: ["b", "a", "b", "c", "a"]}))
    assert req.target == Target(key, ("b", "a", "c"))
    assert req.cids == (("b", "a", "c") if key == "push_clientid" else ())


@pytest.mark.parametrize(("key", "limit"), sorted(MAX_LIST.items()))
def test_list_limit_is_inclusive(key: str, limit: int) -> None:
    values = ids(limit)
    assert parse_send_message(untargeted(**{key: values})).target == Target(key, tuple(values))


def test_list_limits() -> None:
    assert MAX_LIST == {
        "push_clientid": 1000,
        "getui_alias": 1000,
        "user_id": 500,
        "user_tag": 500,
        "device_id": 500,
    }
    assert MAX_DEVICES == 500


def test_duplicates_count_towards_the_limit_before_dedup() -> None:
    err = refused(body(push_clientid=[CID] * 1001))
    assert_illegal(err, "illegal params: push_clientid must list at most 1000 values")


def test_custom_tag_target() -> None:
    req = parse_send_message(untargeted(getui_custom_tag="vip"))
    assert req.target == Target("getui_custom_tag", ("vip",))
    assert req.cids == ()
    # uni-push-admin splits its text box into a list: one tag is still one tag.
    assert parse_send_message(untargeted(getui_custom_tag=["vip"])).target == req.target


def test_uni_push_admins_form_is_taken() -> None:
    """uni-push-admin's sendMessage page sends every field of its form, the unused
    ones as "" (and the vendor channels as nulls): uni reads those as unset."""
    form = {**UNI_PUSH_ADMIN_FORM, "user_id": ["u1", "u2"]}
    req = parse_send_message(form)
    assert req.target == Target("user_id", ("u1", "u2"))
    assert req.message == {
        "title": "Sale",
        "content": "Today only",
        "payload": {"page": "/pages/sale"},
        "force_notification": False,
        "badge": "+1",
    }
    # App platforms only: the page lets the payload be left empty.
    assert "payload" not in parse_send_message({**form, "payload": ""}).message


def test_uni_ims_push_is_taken() -> None:
    """uni-im (DCloud's chat) cuts the title to 20 characters and the text to 50, and
    its payload carries the whole message record, past the docs' 800 characters."""
    record = {
        "body": "字" * 250,
        "type": "text",
        "from_uid": "6" * 24,
        "to_uid": "7" * 24,
        "is_read": False,
        "create_time": 1_764_000_000_000,
        "update_time": 1_764_000_000_000,
        "conversation_id": "single_" + "a" * 32,
        "appid": "__UNI__DESKTOP",
        "call_uid": [],
        "reader_list": [],
        "_id": "8" * 24,
    }
    req = parse_send_message(
        {
            "user_id": "7" * 24,
            "check_token": True,
            "title": "名" * 20,
            "content": "字" * 50,
            "payload": {
                "type": "uni-im",
                "data": record,
                "title": "名" * 20,
                "content": "字" * 250,
                "avatar_file": {"extname": "png", "name": "a.png", "url": "https://x/" + "p" * 90},
                "device_id": "d" * 36,
            },
            "settings": {"ttl": -1, "strategy": {"default": 3}},
            "channel": {"HW": "NORMAL", "XM": "114240", "OP": "114240", "VV": 1},
            "options": {"HW": {"/message/android/category": "IM"}, "VV": {"/category": "IM"}},
        }
    )
    assert len(json.dumps(req.message["payload"], ensure_ascii=False)) > 800
    assert req.ttl_ms == -1


def test_a_transparent_message_needs_no_title_or_content() -> None:
    """uni-im deletes title and content when it wants no notification at all."""
    req = parse_send_message(body(title=DROP, content=DROP))
    assert req.message == {"title": "", "content": "", "payload": {"k": "v"}, "offline": "hold"}
    assert parse_send_message(body(title=None, content="")).message["title"] == ""


@pytest.mark.parametrize(
    ("overrides", "offline"),
    [
        ({}, None),
        ({"settings": {"strategy": {"default": 1}}}, None),
        ({"settings": {"strategy": {"ios": 3, "hw": 3}}}, None),  # vendor keys: not ours
        ({"settings": {"strategy": {"default": 3}}}, "hold"),  # uni-im's system messages
        ({"settings": {"strategy": 3}}, "hold"),
        ({"settings": {"strategy": {"default": 3}, "ttl": -1}}, "drop"),
        ({"settings": {"ttl": 0}, "title": DROP, "content": DROP}, "drop"),
        ({"settings": {"ttl": -1}, "title": DROP, "content": DROP}, "drop"),  # uni-im's syncs
        ({"settings": {"ttl": -1}}, None),  # online only, but a phone maker would show it
    ],
)
def test_what_the_daemon_does_while_no_app_listens(
    overrides: dict[str, Any], offline: str | None
) -> None:
    """settings.strategy 3 is Getui's channel only: a phone shows nothing while its app
    is closed, and the app gets the message when it opens, or never when it is online
    only. A transparent message has nothing to show either."""
    assert parse_send_message(body(**overrides)).message.get("offline") == offline


def test_force_notification_in_the_spelling_of_unis_docs() -> None:
    """uni's sendMessage table spells it forceNotification; its samples force_notification."""
    assert parse_send_message(body(forceNotification=True)).message["force_notification"] is True
    assert "forceNotification" not in parse_send_message(body(forceNotification=True)).message
    assert_illegal(
        refused(body(forceNotification="yes")),
        "illegal params: force_notification must be a boolean",
    )


def test_before_id() -> None:
    assert parse_send_message(untargeted(user_id="u")).before_id is None
    assert parse_send_message(untargeted(user_id="u", before_id=CID)).before_id == CID
    err = refused(untargeted(user_id="u", before_id=5))
    assert_illegal(
        err, "illegal params: before_id must be the before_id string of the previous answer"
    )


@pytest.mark.parametrize(
    "value", [[{"key": "custom_tag", "values": ["vip"], "opt_type": "or"}], "x", {"a": 1}]
)
def test_big_data_tag_is_not_supported(value: Any) -> None:
    err = refused(untargeted(getui_big_data_tag=value))
    assert_illegal(err, "illegal params: getui_big_data_tag is not supported here")


@pytest.mark.parametrize(
    ("targets", "named"),
    [
        ({"push_clientid": CID, "getui_alias": "al"}, "push_clientid, getui_alias"),
        ({"user_id": "u", "device_id": ["d"]}, "user_id, device_id"),
        ({"getui_custom_tag": "vip", "user_tag": "t"}, "getui_custom_tag, user_tag"),
        ({"push_clientid": CID, "getui_big_data_tag": [{}]}, "push_clientid, getui_big_data_tag"),
        (
            {"device_id": "d", "push_clientid": [CID], "getui_alias": "a"},
            "push_clientid, getui_alias, device_id",
        ),
    ],
)
def test_exclusive_targets_name_both(targets: dict[str, Any], named: str) -> None:
    err = refused(untargeted(**targets))
    assert_illegal(err, f"illegal params: {named} are exclusive targets: give only one of them")


def test_every_target_key_is_exclusive_with_every_other() -> None:
    for first in TARGET_KEYS:
        for second in TARGET_KEYS:
            if first >= second:
                continue
            err = refused(untargeted(**{first: "x", second: "y"}))
            assert err.err_code == ILLEGAL
            assert first in err.err_msg
            assert second in err.err_msg
            assert "exclusive" in err.err_msg


def test_an_empty_selector_does_not_count_as_a_second_target() -> None:
    req = parse_send_message(body(push_clientid="", getui_alias=["al"], user_id=None))
    assert req.target == Target("getui_alias", ("al",))


# text limits ----------------------------------------------------------------------------


def test_limit_tables() -> None:
    assert (STRICT.title, STRICT.content, STRICT.payload) == (20, 50, 3072)
    assert (RELAXED.title, RELAXED.content, RELAXED.payload) == (256, 2048, 16_384)
    assert Limits.for_mode(True) is STRICT
    assert Limits.for_mode(False) is RELAXED


@pytest.mark.parametrize(
    ("field", "limits"),
    [
        ("title", STRICT),
        ("content", STRICT),
        ("payload", STRICT),
        ("title", RELAXED),
        ("content", RELAXED),
        ("payload", RELAXED),
    ],
)
def test_text_limits_are_inclusive(field: str, limits: Limits) -> None:
    limit = getattr(limits, field)
    req = parse_send_message(body(**{field: "字" * limit}), limits)
    assert req.message[field] == "字" * limit  # counted in characters, not bytes
    err = refused(body(**{field: "x" * (limit + 1)}), limits)
    assert err.err_code == ILLEGAL
    assert err.err_msg.startswith(f"illegal params: {field} must be at most {limit} characters")


@pytest.mark.parametrize(
    ("overrides", "err_msg"),
    [
        ({"title": "x" * 257}, "title must be at most 256 characters (this gateway's limit)"),
        ({"content": "x" * 2049}, "content must be at most 2048 characters (this gateway's limit)"),
        (
            {"payload": "x" * 16_385},
            "payload must be at most 16384 characters (this gateway's limit) (as JSON text)",
        ),
    ],
)
def test_relaxed_messages_do_not_mention_strict_limits(
    overrides: dict[str, Any], err_msg: str
) -> None:
    err = refused(body(**overrides), RELAXED)
    assert_illegal(err, f"illegal params: {err_msg}")
    assert "strict_limits" not in err.err_msg


def test_relaxed_accepts_what_strict_refuses() -> None:
    roomy = body(title="x" * 21, content="x" * 51, payload="x" * 3073)
    assert "strict_limits = false" in refused(roomy, STRICT).err_msg
    assert parse_send_message(roomy, RELAXED).message["title"] == "x" * 21


def test_object_payload_is_measured_as_json_text() -> None:
    # 3068 characters of value: short enough as a string, too long as an object's JSON.
    assert parse_send_message(body(payload="x" * 3068)).message["payload"] == "x" * 3068
    err = refused(body(payload={"key": "x" * 3068}))
    assert_illegal(
        err, f"illegal params: payload must be at most 3072 characters {STRICT_HINT} (as JSON text)"
    )
    assert parse_send_message(body(payload={"key": "x" * 3060})).message["payload"] == {
        "key": "x" * 3060
    }


def test_object_payload_counts_characters_not_escapes() -> None:
    # 3000 CJK characters: 3008 characters of JSON, ~18,000 if escaped as \uXXXX.
    payload = {"k": "中" * 3000}
    assert parse_send_message(body(payload=payload)).message["payload"] == payload


def test_object_payload_is_measured_as_compact_json() -> None:
    payload = {"a": "x" * 3064}
    assert len(json.dumps(payload, separators=(",", ":"))) == 3072
    assert parse_send_message(body(payload=payload)).message["payload"] == payload


# open_url, group_name, request_id, ttl --------------------------------------------------


@pytest.mark.parametrize("url", ["http://x", "https://example.org/a?b=c#d", "https://" + "a" * 291])
def test_open_url_accepted(url: str) -> None:
    assert len(url) < 300
    assert parse_send_message(body(open_url=url)).message["open_url"] == url


@pytest.mark.parametrize("name", ["g", "group_1", "a.b-c", "中文组", "g" * 100, "2024-05-10"])
def test_group_name_accepted(name: str) -> None:
    assert parse_send_message(body(group_name=name)).group_name == name


def test_group_name_with_a_trailing_newline_is_refused() -> None:
    assert_illegal(refused(body(group_name="grp\n")), f"illegal params: group_name {GROUP_RULE}")


@pytest.mark.parametrize("request_id", ["a" * 10, "b" * 32, "req-2024-0001"])
def test_request_id_bounds(request_id: str) -> None:
    assert parse_send_message(body(request_id=request_id)).request_id == request_id


@pytest.mark.parametrize(
    ("settings", "ttl"),
    [
        (DROP, DEFAULT_TTL_MS),
        (None, DEFAULT_TTL_MS),
        ({}, DEFAULT_TTL_MS),
        ({"ttl": -1}, -1),
        ({"ttl": 0}, 0),
        ({"ttl": MAX_TTL_MS}, 259_200_000),
        ({"ttl": 5000, "other": 1}, 5000),
    ],
)
def test_ttl(settings: Any, ttl: int) -> None:
    assert parse_send_message(body(settings=settings)).ttl_ms == ttl


# carried fields -------------------------------------------------------------------------


def test_carried_fields() -> None:
    assert set(CARRIED) == {
        "force_notification",
        "open_url",
        "sound",
        "category",
        "badge",
        "channelId",
    }
    req = parse_send_message(
        body(
            force_notification=True,
            open_url="https://example.org",
            sound="ding",
            category={"harmony": "EXPRESS"},
            badge="+1",
            channelId="ch1",
            unknown_field="dropped",
            options={"HW": {}},
            request_id="request-id-1",
            group_name="grp",
            settings={"ttl": 10},
        )
    )
    assert req.message == {
        "title": "T",
        "content": "C",
        "payload": {"k": "v"},
        "force_notification": True,
        "open_url": "https://example.org",
        "sound": "ding",
        "category": {"harmony": "EXPRESS"},
        "badge": "+1",
        "channelId": "ch1",
    }
    assert req.request_id == "request-id-1"
    assert req.group_name == "grp"
    assert req.ttl_ms == 10


def test_force_notification_false_is_kept_as_false() -> None:
    assert parse_send_message(body(force_notification=False)).message["force_notification"] is False


def test_none_carried_fields_are_left_out() -> None:
    message = parse_send_message(
        body(channelId=None, sound=None, open_url=None, badge=None, category=None)
    ).message
    assert message == {"title": "T", "content": "C", "payload": {"k": "v"}}


# sendMessage bodies as public cloud functions write them (find_string ids of the
# search corpus; written anew): each is taken, and what travels is what they meant.
REAL_BODIES = [
    # payload only, no title/content (a cloud object's setmessage, id 43206186137)
    ({"push_clientid": CID, "payload": "hello"}, {"payload": "hello", "offline": "hold"}),
    # JSON-in-string payload (an order system's assignOrder, id 65929360852): kept a string
    (
        {
            "push_clientid": CID,
            "title": "新订单待取货",
            "content": "订单 1 等待您取货",
            "payload": json.dumps({"page": "/pages/pending/index", "orderNo": "1"}),
        },
        {"payload": json.dumps({"page": "/pages/pending/index", "orderNo": "1"})},
    ),
    # category object and raw vendor options (id 17227363537)
    (
        {
            "push_clientid": CID,
            "title": "t",
            "content": "c",
            "payload": {"text": "x"},
            "force_notification": True,
            "category": {"harmony": "EXPRESS", "huawei": "EXPRESS", "vivo": "ORDER"},
            "options": {"HW": {"/message/android/target_user_type": 1}},
        },
        {"force_notification": True},
    ),
    # badge "+1" (id 53398457812)
    (
        {"push_clientid": CID, "title": "t", "content": "c", "payload": {}, "badge": "+1"},
        {"badge": "+1"},
    ),
    # user_id with check_token false and a platform list (id 70681652047)
    (
        {
            "user_id": "u1",
            "check_token": False,
            "platform": ["mp-weixin"],
            "title": "t",
            "content": "c",
            "payload": {"type": "chat_new"},
        },
        {"payload": {"type": "chat_new"}},
    ),
]


@pytest.mark.parametrize(("body", "carried"), REAL_BODIES)
def test_real_cloud_function_bodies_are_taken(
    body: dict[str, Any], carried: dict[str, Any]
) -> None:
    req = parse_send_message(body)
    for key, value in carried.items():
        assert req.message[key] == value


def test_a_whole_number_written_with_a_fraction_is_that_integer() -> None:
    """JSON has one kind of number: ``5400000.0`` (Python's ``1.5 * 3600 * 1000``) is
    5400000 to uniCloud's JavaScript; badge ``2.0`` is passed on as 2. A fraction, a
    bool or a string ttl is still refused."""
    req = parse_send_message(body(settings={"ttl": 5400000.0}, badge=2.0))
    assert req.ttl_ms == 5400000 and isinstance(req.ttl_ms, int)
    assert req.message["badge"] == 2 and isinstance(req.message["badge"], int)
    for bad in (True, 1.5, "3600000"):
        with pytest.raises(UniError, match=r"settings\.ttl must be an integer"):
            parse_send_message(body(settings={"ttl": bad}))
    for bad_badge in (True, 2.5):
        with pytest.raises(UniError, match="badge must be"):
            parse_send_message(body(badge=bad_badge))


@pytest.mark.parametrize(
    "extra",
    [{}, {"title": "", "content": ""}, {"settings": {"strategy": {"default": 3}, "ttl": -1}}],
)
def test_the_stored_body_is_the_message_encoded_once_with_its_task(extra: dict[str, Any]) -> None:
    """The size check's compact JSON is kept and the stored body made from it: the
    message was encoded twice per sendMessage (once to measure, once to store)."""
    req = parse_send_message({**body(), **extra, "payload": {"k": "v", "ü": [1.5]}})
    assert req.message_json == json.dumps(req.message, ensure_ascii=False, separators=(",", ":"))
    stored = json.loads(req.stored_json("RASL_x", 12.5))
    assert stored == {**req.message, "taskid": "RASL_x", "hold_until": 12.5}
    assert list(stored)[-2:] == ["taskid", "hold_until"]
    assert json.loads(req.stored_json("RASL_y")) == {**req.message, "taskid": "RASL_y"}

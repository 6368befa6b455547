"""protocol.py: frame parsing, encoding and gateway URLs, without I/O."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unipush_bridge.wire import gateway as protocol
from unipush_bridge.wire.gateway import (
    MAX_FRAME_BYTES,
    Ack,
    Error,
    Hello,
    ProtocolError,
    Push,
    PushMessage,
    Receipt,
    Welcome,
    encode,
    http_url,
    parse_client_frame,
    parse_server_frame,
    websocket_url,
)

CID = "0123456789abcdef0123456789abcdef"
PARSERS = [parse_client_frame, parse_server_frame]


def dumps(obj: Any) -> str:
    return json.dumps(obj)


# valid frames ---------------------------------------------------------------------------


def test_client_hello_minimal_gets_defaults() -> None:
    frame = parse_client_frame(dumps({"type": "hello", "appid": "__UNI__A"}))
    assert frame == Hello(appid="__UNI__A", cid=None, token=None, acked=0, v=1)


def test_client_hello_full() -> None:
    text = dumps({"type": "hello", "v": 1, "appid": "a", "cid": CID, "token": "t", "acked": 9})
    frame = parse_client_frame(text)
    assert isinstance(frame, Hello)
    assert (frame.appid, frame.cid, frame.token, frame.acked, frame.v) == ("a", CID, "t", 9, 1)


def test_client_hello_ignores_unknown_fields() -> None:
    frame = parse_client_frame(dumps({"type": "hello", "appid": "a", "future": [1, 2]}))
    assert frame == Hello(appid="a")


def test_client_ack_receipt_error() -> None:
    assert parse_client_frame('{"type": "ack", "seq": 1}') == Ack(seq=1)
    assert parse_client_frame(dumps({"type": "receipt", "id": "m1", "event": "click"})) == Receipt(
        id="m1", event="click"
    )
    assert parse_client_frame(dumps({"type": "error", "code": "x", "message": "y"})) == Error(
        code="x", message="y", fatal=False
    )


def test_server_welcome_and_push() -> None:
    assert parse_server_frame(dumps({"type": "welcome", "cid": CID, "acked": 4})) == Welcome(
        cid=CID, acked=4
    )
    push = parse_server_frame(
        dumps(
            {
                "type": "push",
                "seq": 7,
                "id": "m7",
                "message": {"title": "T", "content": "C", "payload": {"k": [1]}, "sound": "x"},
            }
        )
    )
    assert isinstance(push, Push)
    assert (push.seq, push.id) == (7, "m7")
    assert push.message.title == "T"
    assert push.message.content == "C"
    assert push.message.payload == {"k": [1]}
    assert push.message.force_notification is False
    assert push.message.extra == {"sound": "x"}


def test_server_error_fatal() -> None:
    frame = parse_server_frame(dumps({"type": "error", "code": "c", "message": "m", "fatal": True}))
    assert frame == Error(code="c", message="m", fatal=True)


def test_frame_of_exactly_max_size_is_accepted() -> None:
    head = '{"type":"error","code":"c","message":"'
    tail = '"}'
    text = head + "a" * (MAX_FRAME_BYTES - len(head) - len(tail)) + tail
    assert len(text) == MAX_FRAME_BYTES
    frame = parse_server_frame(text)
    assert isinstance(frame, Error)
    assert len(frame.message) == MAX_FRAME_BYTES - len(head) - len(tail)


# rejected frames ------------------------------------------------------------------------


@pytest.mark.parametrize("parse", PARSERS)
def test_not_json(parse: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^frame: not JSON"):
        parse("{nope")


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("text", ["[]", "1", '"hello"', "null", "true"])
def test_not_an_object(parse: Any, text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(text)
    assert str(info.value) == "frame: must be a JSON object"


@pytest.mark.parametrize("parse", PARSERS)
def test_binary_frame(parse: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(b'{"type": "ack", "seq": 1}')
    assert str(info.value) == "frame: binary frames are not part of the protocol"


@pytest.mark.parametrize("parse", PARSERS)
def test_oversized_frame(parse: Any) -> None:
    text = '{"type":"error","code":"c","message":"' + "a" * MAX_FRAME_BYTES + '"}'
    with pytest.raises(ProtocolError) as info:
        parse(text)
    assert str(info.value) == f"frame: larger than {MAX_FRAME_BYTES} bytes"


def test_oversized_frame_counts_utf8_bytes() -> None:
    text = '{"type":"error","code":"c","message":"' + "中" * 100_000 + '"}'
    assert len(text) < MAX_FRAME_BYTES < len(text.encode())
    with pytest.raises(ProtocolError, match="larger than"):
        parse_server_frame(text)


@pytest.mark.parametrize("parse", PARSERS)
def test_missing_type(parse: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse('{"seq": 1}')
    assert str(info.value) == "type: field required"


@pytest.mark.parametrize(
    ("parse", "kinds"),
    [
        (parse_client_frame, "hello, ack, receipt, error"),
        (parse_server_frame, "welcome, push, error"),
    ],
)
def test_unknown_type(parse: Any, kinds: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse('{"type": "bogus"}')
    assert str(info.value) == f"type: must be one of {kinds}; got 'bogus'"


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(("kind", "shown"), [(1, "1"), ([], "[]"), ({"a": 1}, "{'a': 1}")])
def test_type_that_is_not_a_string(parse: Any, kind: Any, shown: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(dumps({"type": kind}))
    assert str(info.value).startswith("type: must be one of ")
    assert str(info.value).endswith(f"; got {shown}")


@pytest.mark.parametrize("parse", PARSERS)
def test_null_type_is_missing(parse: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse('{"type": null}')
    assert str(info.value) == "type: field required"


def test_client_parser_rejects_server_frames() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(dumps({"type": "welcome", "cid": CID}))
    assert str(info.value) == "type: must be one of hello, ack, receipt, error; got 'welcome'"


def test_server_parser_rejects_client_frames() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_frame(dumps({"type": "hello", "appid": "a"}))
    assert str(info.value) == "type: must be one of welcome, push, error; got 'hello'"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "hello", "appid": "a", "cid": "ABCDEF0123456789ABCDEF0123456789"},
         "hello.cid: must be 32 lowercase hex characters"),
        ({"type": "hello", "appid": "a", "cid": "g" * 32},
         "hello.cid: must be 32 lowercase hex characters"),
        ({"type": "hello", "appid": "a", "cid": CID[:-1]},
         "hello.cid: must be 32 lowercase hex characters"),
        ({"type": "hello", "appid": "a", "cid": 7}, "hello.cid: must be a string"),
        ({"type": "hello", "appid": "a", "acked": -1}, "hello.acked: must be at least 0"),
        ({"type": "hello", "appid": "a", "acked": 1.5}, "hello.acked: must be an integer"),
        ({"type": "hello", "appid": "a", "acked": True}, "hello.acked: must be an integer"),
        ({"type": "hello", "appid": "a", "acked": None}, "hello.acked: field required"),
        ({"type": "hello", "appid": "a", "v": "1"}, "hello.v: must be an integer"),
        ({"type": "hello", "appid": ""}, "hello.appid: must be 1 to 64 characters"),
        ({"type": "hello", "appid": "a" * 65}, "hello.appid: must be 1 to 64 characters"),
        ({"type": "hello", "appid": ["a"]}, "hello.appid: must be a string"),
        ({"type": "hello"}, "hello.appid: field required"),
        ({"type": "hello", "appid": "a", "token": "t" * 257},
         "hello.token: must be 0 to 256 characters"),
        ({"type": "ack", "seq": 0}, "ack.seq: must be at least 1"),
        ({"type": "ack"}, "ack.seq: field required"),
        ({"type": "ack", "seq": "x"}, "ack.seq: must be an integer"),
        ({"type": "ack", "seq": "1"}, "ack.seq: must be an integer"),
        ({"type": "receipt", "id": "m", "event": "open"},
         "receipt.event: must be 'display' or 'click'"),
        ({"type": "receipt", "id": "m"}, "receipt.event: must be 'display' or 'click'"),
        ({"type": "receipt", "id": "", "event": "click"}, "receipt.id: must be 1 to 64 characters"),
        ({"type": "receipt", "event": "click"}, "receipt.id: field required"),
        ({"type": "receipt", "id": "m", "event": "click", "taskid": "t" * 65},
         "receipt.taskid: must be 0 to 64 characters"),
        ({"type": "error", "code": "c"}, "error.message: field required"),
        ({"type": "error", "message": "m"}, "error.code: field required"),
        ({"type": "error", "code": "c", "message": "m", "fatal": 1},
         "error.fatal: must be a boolean"),
    ],
)  # fmt: skip
def test_client_field_rules(frame: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(dumps(frame))
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "welcome", "cid": "nope"}, "welcome.cid: must be 32 lowercase hex characters"),
        ({"type": "welcome", "cid": CID.upper()},
         "welcome.cid: must be 32 lowercase hex characters"),
        ({"type": "welcome", "cid": CID, "acked": -3}, "welcome.acked: must be at least 0"),
        ({"type": "welcome", "cid": CID, "backlog": -1}, "welcome.backlog: must be at least 0"),
        ({"type": "welcome"}, "welcome.cid: field required"),
        ({"type": "push", "seq": 0, "id": "m", "message": {"title": "t", "content": "c"}},
         "push.seq: must be at least 1"),
        ({"type": "push", "seq": "1", "id": "m", "message": {"title": "t", "content": "c"}},
         "push.seq: must be an integer"),
        ({"type": "push", "id": "m", "message": {"title": "t", "content": "c"}},
         "push.seq: field required"),
        ({"type": "push", "seq": 1, "message": {"title": "t", "content": "c"}},
         "push.id: field required"),
        ({"type": "push", "seq": 1, "id": "m"}, "push.message: field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"content": "c"}},
         "push.message.title: field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t"}},
         "push.message.content: field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": 5, "content": "c"}},
         "push.message.title: must be a string"),
        ({"type": "push", "seq": 1, "id": "m", "message": "hi"}, "push.message: must be an object"),
        ({"type": "push", "seq": 1, "id": "m", "message": None}, "push.message: must be an object"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t", "content": "c",
          "force_notification": "maybe"}}, "push.message.force_notification: must be a boolean"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t", "content": "c",
          "open_url": 1}}, "push.message.open_url: must be a string"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t", "content": "c",
          "taskid": "t" * 65}}, "push.message.taskid: must be 0 to 64 characters"),
    ],
)  # fmt: skip
def test_server_field_rules(frame: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_frame(dumps(frame))
    assert str(info.value) == expected


def test_field_path_is_not_doubled() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame('{"type": "ack", "seq": 0}')
    assert str(info.value).startswith("ack.seq: ")


@pytest.mark.parametrize("parse", PARSERS)
def test_deeply_nested_json_is_a_protocol_error(parse: Any) -> None:
    with pytest.raises(ProtocolError):
        parse("[" * 100_000)


@pytest.mark.parametrize("parse", PARSERS)
def test_huge_integer_is_a_protocol_error(parse: Any) -> None:
    with pytest.raises(ProtocolError):
        parse('{"type": "ack", "seq": ' + "1" * 5000 + "}")


# property: parse or ProtocolError, nothing else -------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, any JSON value otherwise."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda use_good: good if use_good else json_values
    )


message_like = st.fixed_dictionaries(
    {"title": mostly(st.text(max_size=10)), "content": mostly(st.text(max_size=10))},
    optional={
        "payload": json_values,
        "force_notification": mostly(st.booleans()),
        "open_url": mostly(st.text(max_size=10)),
        "taskid": mostly(st.text(max_size=10)),
        "sound": json_values,
        "channelId": json_values,
    },
)
#: Values that satisfy each field's rule (or come close), so that many frames parse.
good_values: dict[str, st.SearchStrategy[Any]] = {
    "v": st.integers(min_value=-1, max_value=2),
    "appid": st.text(min_size=1, max_size=8),
    "cid": st.just(CID) | st.text(alphabet="0123456789abcdefA", min_size=31, max_size=33),
    "token": st.text(max_size=8),
    "acked": st.integers(min_value=-1, max_value=9),
    "backlog": st.integers(min_value=-1, max_value=9),
    "seq": st.integers(min_value=-1, max_value=9),
    "id": st.text(max_size=8),
    "event": st.sampled_from(["display", "click", "open"]),
    "taskid": st.text(max_size=8),
    "code": st.text(max_size=8),
    "message": st.text(max_size=8),
    "fatal": st.booleans(),
}


def frame_of(kind: str, required: list[str], optional: list[str]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"type": st.just(kind), **{k: mostly(good_values[k]) for k in required}},
        optional={**{k: mostly(good_values[k]) for k in optional}, "future": json_values},
    )


typed_frames = st.one_of(
    frame_of("hello", ["appid"], ["v", "cid", "token", "acked"]),
    frame_of("ack", ["seq"], []),
    frame_of("receipt", ["id", "event"], ["taskid"]),
    frame_of("error", ["code", "message"], ["fatal"]),
    frame_of("welcome", ["cid"], ["acked", "backlog", "v"]),
    frame_of("push", ["seq", "id"], []).flatmap(
        lambda frame: mostly(message_like).map(lambda message: {**frame, "message": message})
    ),
)
frame_like = st.builds(
    lambda kind, fields: {"type": kind, **fields} if kind is not None else fields,
    st.sampled_from([None, "hello", "ack", "receipt", "error", "welcome", "push", "x", 1]),
    st.dictionaries(st.sampled_from(sorted(good_values)), json_values | st.just(CID), max_size=5),
)
json_texts = st.one_of(
    json_values.map(json.dumps), frame_like.map(json.dumps), typed_frames.map(json.dumps)
)


@settings(max_examples=300, deadline=None)
@given(text=json_texts)
def test_any_json_text_parses_or_raises_protocol_error(text: str) -> None:
    for parse in PARSERS:
        try:
            frame = parse(text)
        except ProtocolError as exc:
            assert str(exc)
        else:
            assert frame.type in {"hello", "ack", "receipt", "error", "welcome", "push"}
            # whatever parses is encoded back to the same frame
            assert parse(encode(frame)) == frame


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=50))
def test_any_text_parses_or_raises_protocol_error(text: str | bytes) -> None:
    for parse in PARSERS:
        try:
            frame = parse(text)
        except ProtocolError as exc:
            assert str(exc)
        else:
            assert isinstance(text, str)
            assert frame.type in {"hello", "ack", "receipt", "error", "welcome", "push"}


@settings(max_examples=300, deadline=None)
@given(raw=json_values | message_like)
def test_any_message_parses_or_raises_protocol_error(raw: Any) -> None:
    try:
        message = PushMessage.parse(raw)
    except ProtocolError as exc:
        assert str(exc).startswith("push.message")
    else:
        assert PushMessage.parse(message.to_dict()) == message


# PushMessage ----------------------------------------------------------------------------


def test_message_round_trip_keeps_extras() -> None:
    raw = {
        "title": "标题",
        "content": "c",
        "payload": {"a": [1, None]},
        "force_notification": True,
        "open_url": "https://example.org/x",
        "taskid": "RASL_1122_abc",
        "sound": "ring",
        "badge": 3,
        "channelId": "ch",
        "nested": {"k": [True, 1.5]},
    }
    message = PushMessage.parse(raw)
    assert message == PushMessage(
        title="标题",
        content="c",
        payload={"a": [1, None]},
        force_notification=True,
        open_url="https://example.org/x",
        taskid="RASL_1122_abc",
        extra={"sound": "ring", "badge": 3, "channelId": "ch", "nested": {"k": [True, 1.5]}},
    )
    assert message.to_dict() == raw
    assert PushMessage.parse(message.to_dict()) == message


def test_message_minimal() -> None:
    message = PushMessage.parse({"title": "t", "content": "c"})
    assert message == PushMessage(title="t", content="c")
    assert message.payload is None
    assert message.force_notification is False
    assert message.open_url is None
    assert message.taskid is None
    assert message.extra == {}
    assert message.to_dict() == {"title": "t", "content": "c"}


def test_message_allows_empty_title_and_content() -> None:
    assert PushMessage.parse({"title": "", "content": ""}).to_dict() == {"title": "", "content": ""}


@pytest.mark.parametrize(
    ("given", "offline"),
    [
        (None, "show"),
        ("show", "show"),
        ("hold", "hold"),
        ("drop", "drop"),
        ("later", "show"),
        (1, "show"),
    ],
)
def test_message_offline_rule(given: Any, offline: str) -> None:
    """What to do while no app listens rides in the message; anything unknown reads as
    "show" (a newer gateway's idea never hides a push), and it never reaches the app's
    event data (not in extra); to_dict keeps it for the daemon's inbox."""
    raw = {"title": "t", "content": "c"} | ({} if given is None else {"offline": given})
    message = PushMessage.parse(raw)
    assert message.offline == offline
    assert "offline" not in message.extra
    assert PushMessage.parse(message.to_dict()) == message
    assert ("offline" in message.to_dict()) is (offline != "show")


@pytest.mark.parametrize(
    ("given", "hold_until"),
    [
        (1767225600, 1767225600.0),
        (1767225600.25, 1767225600.25),
        (True, None),
        ("1767225600", None),
        (10**400, None),  # past any float
        ({"at": 1}, None),
    ],
)
def test_message_hold_until_is_a_finite_time_or_none(given: Any, hold_until: Any) -> None:
    """The gateway's end of the sender's ttl: anything but a finite number reads as
    none given (the push is kept, never refused for it), and apps never see the key."""
    message = PushMessage.parse({"title": "t", "content": "c", "hold_until": given})
    assert message.hold_until == hold_until
    assert "hold_until" not in message.extra
    assert PushMessage.parse(message.to_dict()) == message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_frame_with_a_json_constant_is_refused_naming_it(constant: str) -> None:
    """Python's json reads NaN and Infinity, no other end does: a push carrying one was
    recorded, then its receive event could not be encoded for any app and was lost."""
    frame = (
        '{"type":"push","seq":1,"id":"a","message":{"title":"t","content":"c",'
        f'"payload":{{"v":{constant}}}}}}}'
    )
    refused = f"frame: not acceptable JSON \\({constant} is not JSON"
    with pytest.raises(ProtocolError, match=refused):
        parse_server_frame(frame)
    with pytest.raises(ProtocolError, match="is not JSON"):
        parse_client_frame(f'{{"type":"ack","seq":{constant}}}')


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 400 + ".0"])
def test_a_frame_with_a_number_past_a_double_is_refused_naming_it(number: str) -> None:
    """float() makes Infinity of these, which JSON cannot write back: recorded, such a
    push broke every history answer that reached it."""
    frame = (
        '{"type":"push","seq":1,"id":"a","message":{"title":"t","content":"c",'
        f'"payload":{{"v":{number}}}}}}}'
    )
    with pytest.raises(ProtocolError, match="is too large for a number"):
        parse_server_frame(frame)
    ok = parse_server_frame(frame.replace(number, "1.7e308"))
    assert isinstance(ok, Push) and ok.message.payload == {"v": 1.7e308}


def test_message_to_dict_leaves_out_none_fields() -> None:
    message = PushMessage.parse(
        {"title": "t", "content": "c", "payload": None, "open_url": None, "taskid": None}
    )
    assert message.to_dict() == {"title": "t", "content": "c"}
    assert PushMessage(title="t", content="c").to_dict() == {"title": "t", "content": "c"}


@pytest.mark.parametrize("payload", ["text", {"a": 1}, [1, 2], 0, False, ""])
def test_message_payload_is_kept_as_given(payload: Any) -> None:
    message = PushMessage.parse({"title": "t", "content": "c", "payload": payload})
    assert message.payload == payload
    assert message.to_dict()["payload"] == payload


def test_message_force_notification_only_when_true() -> None:
    off = PushMessage.parse({"title": "t", "content": "c", "force_notification": False})
    assert off.force_notification is False
    assert "force_notification" not in off.to_dict()
    on = PushMessage.parse({"title": "t", "content": "c", "force_notification": True})
    assert on.force_notification is True
    assert on.to_dict() == {"title": "t", "content": "c", "force_notification": True}


def test_message_known_fields_are_not_extras() -> None:
    raw = {
        "title": "t",
        "content": "c",
        "payload": "p",
        "force_notification": True,
        "open_url": "https://x",
        "taskid": "T",
        "category": "IM",
    }
    assert PushMessage.parse(raw).extra == {"category": "IM"}


def test_message_extra_is_a_copy_of_the_input() -> None:
    raw: dict[str, Any] = {"title": "t", "content": "c", "sound": "a"}
    message = PushMessage.parse(raw)
    raw["sound"] = "b"
    raw["badge"] = 1
    assert message.extra == {"sound": "a"}


def test_message_is_frozen() -> None:
    message = PushMessage.parse({"title": "t", "content": "c"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.title = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hi", "push.message: must be an object"),
        (["title", "content"], "push.message: must be an object"),
        (None, "push.message: must be an object"),
        ({"content": "c"}, "push.message.title: field required"),
        ({"title": "t"}, "push.message.content: field required"),
        ({"title": None, "content": "c"}, "push.message.title: field required"),
        ({"title": 1, "content": "c"}, "push.message.title: must be a string"),
        ({"title": ["t"], "content": "c"}, "push.message.title: must be a string"),
        ({"title": "t", "content": {"c": 1}}, "push.message.content: must be a string"),
        ({"title": "t", "content": "c", "force_notification": "true"},
         "push.message.force_notification: must be a boolean"),
        ({"title": "t", "content": "c", "force_notification": 1},
         "push.message.force_notification: must be a boolean"),
        ({"title": "t", "content": "c", "force_notification": None},
         "push.message.force_notification: must be a boolean"),
        ({"title": "t", "content": "c", "open_url": False},
         "push.message.open_url: must be a string"),
        ({"title": "t", "content": "c", "taskid": 12}, "push.message.taskid: must be a string"),
    ],
)  # fmt: skip
def test_message_rejects_bad_types_naming_the_field(raw: Any, expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        PushMessage.parse(raw)
    assert str(info.value) == expected


def test_message_errors_use_the_given_frame_name() -> None:
    with pytest.raises(ProtocolError) as info:
        PushMessage.parse({"title": 1, "content": "c"}, frame="body")
    assert str(info.value) == "body.title: must be a string"


# encode ---------------------------------------------------------------------------------

FULL_MESSAGE = PushMessage.parse(
    {
        "title": "标题",
        "content": "c",
        "payload": {"a": [1, None]},
        "force_notification": True,
        "open_url": "https://example.org/",
        "taskid": "RASL_1",
        "channelId": "ch",
    }
)


@pytest.mark.parametrize(
    "frame",
    [
        Hello(appid="a"),
        Hello(appid="a", cid=CID, token="tok", acked=12),
        Hello(appid="a", token=""),
        Ack(seq=3),
        Receipt(id="m1", event="display"),
        Receipt(id="m1", event="click", taskid="RASL_1"),
        Error(code="bad_frame", message="x", fatal=True),
        Error(code="c", message=""),
    ],
)
def test_client_frames_round_trip(frame: Any) -> None:
    assert parse_client_frame(encode(frame)) == frame


def test_receipt_for_a_message_with_an_empty_taskid_is_accepted() -> None:
    message = PushMessage.parse({"title": "t", "content": "c", "taskid": ""})
    frame = Receipt(id="m1", event="display", taskid=message.taskid)
    assert parse_client_frame(encode(frame)) == frame


@pytest.mark.parametrize(
    "frame",
    [
        Welcome(cid=CID, acked=0),
        Welcome(cid=CID, acked=99, backlog=7),
        Push(seq=5, id="m5", message=FULL_MESSAGE),
        Push(seq=1, id="m1", message=PushMessage(title="t", content="c")),
        Error(code="c", message="m"),
    ],
)
def test_server_frames_round_trip(frame: Any) -> None:
    assert parse_server_frame(encode(frame)) == frame


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (Hello(appid="a"), '{"type":"hello","appid":"a","acked":0,"v":1}'),
        (
            Hello(appid="a", cid=CID, token="tok", acked=12),
            f'{{"type":"hello","appid":"a","cid":"{CID}","token":"tok","acked":12,"v":1}}',
        ),
        (Ack(seq=3), '{"type":"ack","seq":3}'),
        (Receipt(id="m1", event="display"), '{"type":"receipt","id":"m1","event":"display"}'),
        (
            Receipt(id="m1", event="click", taskid="T"),
            '{"type":"receipt","id":"m1","event":"click","taskid":"T"}',
        ),
        (
            Welcome(cid=CID, acked=4, backlog=2),
            f'{{"type":"welcome","cid":"{CID}","acked":4,"backlog":2,"v":1}}',
        ),
        (
            Push(seq=5, id="m5", message=PushMessage(title="标题", content="c")),
            '{"type":"push","seq":5,"id":"m5","message":{"title":"标题","content":"c"}}',
        ),
        (
            Push(seq=6, id="m6", message=FULL_MESSAGE),
            '{"type":"push","seq":6,"id":"m6","message":{"title":"标题","content":"c",'
            '"payload":{"a":[1,null]},"force_notification":true,'
            '"open_url":"https://example.org/","taskid":"RASL_1","channelId":"ch"}}',
        ),
        (Error(code="c", message="m"), '{"type":"error","code":"c","message":"m","fatal":false}'),
        (
            Error(code="c", message="m", fatal=True),
            '{"type":"error","code":"c","message":"m","fatal":true}',
        ),
    ],
)
def test_encode_is_compact_json_without_none_fields(frame: Any, expected: str) -> None:
    assert encode(frame) == expected


def test_encode_leaves_out_none_fields() -> None:
    assert json.loads(encode(Hello(appid="a"))) == {
        "type": "hello",
        "v": 1,
        "appid": "a",
        "acked": 0,
    }
    assert "null" not in encode(Receipt(id="m", event="click"))


# URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("ws://h:8787", "ws://h:8787/ws"),
        ("ws://h:8787/", "ws://h:8787/ws"),
        ("wss://example.org", "wss://example.org/ws"),
        ("http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws"),
        ("https://example.org:443", "wss://example.org:443/ws"),
        ("https://example.org/", "wss://example.org/ws"),
        ("ws://h:1/custom/path", "ws://h:1/custom/path"),
        ("http://h:1/push", "ws://h:1/push"),
        ("  ws://h:1  ", "ws://h:1/ws"),
    ],
)
def test_websocket_url(given_url: str, expected: str) -> None:
    assert websocket_url(given_url) == expected


@pytest.mark.parametrize("bad", ["ftp://h:1", "h:8787", "", "WS:/h"])
def test_websocket_url_rejects_scheme(bad: str) -> None:
    with pytest.raises(ValueError, match="must start with ws://, wss://, http:// or https://"):
        websocket_url(bad)


@pytest.mark.parametrize("bad", ["ws://", "ws:///ws", "https://"])
def test_websocket_url_rejects_empty_host(bad: str) -> None:
    with pytest.raises(ValueError, match="has no host"):
        websocket_url(bad)


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("ws://h:8787/ws", "http://h:8787"),
        ("wss://example.org/ws", "https://example.org"),
        ("ws://h:8787", "http://h:8787"),
        ("http://h:8787/", "http://h:8787"),
        ("https://h:2/api/x", "https://h:2"),
        (" ws://127.0.0.1:1/custom/ ", "http://127.0.0.1:1"),
    ],
)
def test_http_url(given_url: str, expected: str) -> None:
    assert http_url(given_url) == expected


def test_close_codes_are_distinct_private_range() -> None:
    codes = [
        protocol.CloseCode.BAD_HELLO,
        protocol.CloseCode.UNAUTHORIZED,
        protocol.CloseCode.UNKNOWN_APP,
        protocol.CloseCode.REPLACED,
        protocol.CloseCode.UNSUPPORTED_VERSION,
    ]
    assert codes == [4400, 4401, 4404, 4409, 4426]


def test_lone_surrogates_in_a_push_become_replacement_characters() -> None:
    """A gateway's ``\\ud83d`` escape with no partner (a JS title cut inside an emoji)
    parses to text that SQLite and D-Bus can take; a pair stays the character it is."""
    frame = {
        "type": "push",
        "seq": 1,
        "id": "m1",
        "message": {
            "title": "cut \ud83d",
            "content": "\ud83d\ude00 ok",
            "payload": {"k\udc00": ["\udfff"]},
            "sound": "\ud800",
        },
    }
    push = protocol.parse_server_frame(json.dumps(frame))
    assert isinstance(push, protocol.Push)
    assert push.message.title == "cut \ufffd"
    assert push.message.content == "\U0001f600 ok"
    assert push.message.payload == {"k\ufffd": ["\ufffd"]}
    assert push.message.extra == {"sound": "\ufffd"}
    json.dumps(push.message.to_dict(), ensure_ascii=False).encode()  # storable


def test_a_frame_without_surrogates_is_parsed_as_it_is() -> None:
    text = json.dumps(
        {"type": "push", "seq": 1, "id": "m", "message": {"title": "\\ud800", "content": "é"}}
    )
    push = protocol.parse_server_frame(text)
    assert isinstance(push, protocol.Push)
    assert push.message.title == "\\ud800"  # a backslash and letters, not an escape


def test_a_daemon_frame_with_a_lone_surrogate_is_refused_naming_it() -> None:
    """The gateway cannot store one (a hello's appid or secret, a receipt's id): a
    broken frame, not a store failure."""
    with pytest.raises(ProtocolError, match=r"^frame: a string holds a lone surrogate \(U\+DC00\)"):
        parse_client_frame('{"type": "receipt", "id": "a\\udc00", "event": "click"}')
    hello = parse_client_frame('{"type": "hello", "appid": "\\ud83d\\ude00"}')  # a pair
    assert isinstance(hello, protocol.Hello) and hello.appid == "\U0001f600"

"""protocol.py: frame parsing, encoding and gateway URLs, without I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unipush_bridge import protocol
from unipush_bridge.protocol import (
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
    assert push.message.model_extra == {"sound": "x"}


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


@pytest.mark.parametrize("parse", PARSERS)
def test_unknown_type(parse: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse('{"type": "bogus"}')
    text = str(info.value)
    assert "bogus" in text
    assert "'type'" in text
    assert "does not match" in text


def test_client_parser_rejects_server_frames() -> None:
    with pytest.raises(ProtocolError, match="welcome"):
        parse_client_frame(dumps({"type": "welcome", "cid": CID}))


def test_server_parser_rejects_client_frames() -> None:
    with pytest.raises(ProtocolError, match="hello"):
        parse_server_frame(dumps({"type": "hello", "appid": "a"}))


@pytest.mark.parametrize(
    ("frame", "field", "rule"),
    [
        (
            {"type": "hello", "appid": "a", "cid": "ABCDEF0123456789ABCDEF0123456789"},
            "cid",
            "pattern",
        ),
        ({"type": "hello", "appid": "a", "cid": CID[:-1]}, "cid", "pattern"),
        ({"type": "hello", "appid": "a", "acked": -1}, "acked", "greater than or equal to 0"),
        ({"type": "hello", "appid": ""}, "appid", "at least 1 character"),
        ({"type": "hello", "appid": "a" * 65}, "appid", "at most 64 characters"),
        ({"type": "hello"}, "appid", "Field required"),
        ({"type": "hello", "appid": "a", "token": "t" * 257}, "token", "at most 256 characters"),
        ({"type": "ack", "seq": 0}, "seq", "greater than or equal to 1"),
        ({"type": "ack"}, "seq", "Field required"),
        ({"type": "ack", "seq": "x"}, "seq", "valid integer"),
        ({"type": "receipt", "id": "m", "event": "open"}, "event", "'display' or 'click'"),
        ({"type": "receipt", "id": "", "event": "click"}, "id", "at least 1 character"),
        ({"type": "error", "code": "c"}, "message", "Field required"),
    ],
)
def test_client_field_rules(frame: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(dumps(frame))
    text = str(info.value)
    assert text.startswith(f"{frame['type']}.")
    assert f".{field}: " in text
    assert rule in text


@pytest.mark.parametrize(
    ("frame", "field", "rule"),
    [
        ({"type": "welcome", "cid": "nope"}, "cid", "pattern"),
        ({"type": "welcome", "cid": CID, "acked": -3}, "acked", "greater than or equal to 0"),
        ({"type": "welcome"}, "cid", "Field required"),
        ({"type": "push", "seq": 0, "id": "m", "message": {"title": "t", "content": "c"}}, "seq",
         "greater than or equal to 1"),
        ({"type": "push", "seq": 1, "message": {"title": "t", "content": "c"}}, "id",
         "Field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"content": "c"}}, "message.title",
         "Field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t"}}, "message.content",
         "Field required"),
        ({"type": "push", "seq": 1, "id": "m", "message": "hi"}, "message", "valid dictionary"),
        ({"type": "push", "seq": 1, "id": "m", "message": {"title": "t", "content": "c",
          "force_notification": "maybe"}}, "message.force_notification", "valid boolean"),
    ],
)  # fmt: skip
def test_server_field_rules(frame: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_frame(dumps(frame))
    text = str(info.value)
    assert text.startswith(f"{frame['type']}.")
    assert f".{field}: " in text
    assert rule in text


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
frame_fields = st.sampled_from(
    ["v", "appid", "cid", "token", "acked", "seq", "id", "event", "code", "message", "fatal"]
)
frame_like = st.builds(
    lambda kind, fields: {"type": kind, **fields} if kind is not None else fields,
    st.sampled_from([None, "hello", "ack", "receipt", "error", "welcome", "push", "x", 1]),
    st.dictionaries(
        frame_fields,
        json_values
        | st.just(CID)
        | st.fixed_dictionaries(
            {"title": json_values, "content": json_values},
            optional={"payload": json_values, "force_notification": json_values},
        ),
        max_size=5,
    ),
)
json_texts = st.one_of(json_values.map(json.dumps), frame_like.map(json.dumps))


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


# encode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        Hello(appid="a"),
        Hello(appid="a", cid=CID, token="tok", acked=12),
        Ack(seq=3),
        Receipt(id="m1", event="display"),
        Error(code="bad_frame", message="x", fatal=True),
    ],
)
def test_client_frames_round_trip(frame: Any) -> None:
    assert parse_client_frame(encode(frame)) == frame


@pytest.mark.parametrize(
    "frame",
    [
        Welcome(cid=CID, acked=0),
        Welcome(cid=CID, acked=99),
        Push(
            seq=5,
            id="m5",
            message=PushMessage.model_validate(
                {
                    "title": "标题",
                    "content": "c",
                    "payload": {"a": [1, None]},
                    "force_notification": True,
                    "channelId": "ch",
                }
            ),
        ),
        Error(code="c", message="m"),
    ],
)
def test_server_frames_round_trip(frame: Any) -> None:
    assert parse_server_frame(encode(frame)) == frame


def test_encode_leaves_out_none_fields() -> None:
    assert json.loads(encode(Hello(appid="a"))) == {
        "type": "hello",
        "v": 1,
        "appid": "a",
        "acked": 0,
    }


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

"""gateway/session.py: the gateway's side of one daemon connection, without I/O."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from unipush_bridge.gateway.session import (
    Acked,
    Close,
    Receipted,
    Register,
    Reply,
    ServerSession,
    push_frame,
)
from unipush_bridge.wire.gateway import CloseCode, Error, Push, Welcome, parse_server_frame

CID = "0123456789abcdef0123456789abcdef"
TOKEN = "client-token-0123456789"


def token_for(token: str | None, served: tuple[str, ...] = ("__UNI__A",)) -> Any:
    """A client_token(appid) callable: ``token`` for served apps, LookupError otherwise."""

    def client_token(appid: str) -> str | None:
        if appid not in served:
            raise LookupError(appid)
        return token

    return client_token


def hello(**fields: Any) -> str:
    return json.dumps({"type": "hello", "appid": "__UNI__A", **fields})


def fatal_error(event: Close) -> Error:
    frame = parse_server_frame(event.frame)
    assert isinstance(frame, Error)
    assert frame.fatal is True
    return frame


def registered(**fields: Any) -> ServerSession:
    sess = ServerSession()
    [event] = sess.receive(hello(cid=CID, **fields))
    assert isinstance(event, Register)
    return sess


# the first frame ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ack", "seq": 1}',
        '{"type": "receipt", "id": "m", "event": "click"}',
        '{"type": "error", "code": "x", "message": "y"}',
    ],
)
def test_first_frame_not_hello_closes_bad_hello(text: str) -> None:
    sess = ServerSession()
    [event] = sess.receive(text)
    assert isinstance(event, Close)
    assert event.code == CloseCode.BAD_HELLO
    assert event.reason == "bad_frame"
    err = fatal_error(event)
    assert err.code == "bad_frame"
    assert err.message == "the first frame must be hello"
    assert not sess.registered


@pytest.mark.parametrize(
    ("text", "in_message"),
    [
        ("garbage", "not JSON"),
        (b"binary", "binary"),
        ('{"type": "hello"}', "appid"),
        ('{"type": "hello", "appid": "a", "cid": "XYZ"}', "cid"),
        ('{"type": "hello", "appid": "a", "acked": -1}', "acked"),
    ],
)
def test_invalid_first_frame_closes_bad_hello(text: str | bytes, in_message: str) -> None:
    sess = ServerSession()
    [event] = sess.receive(text)
    assert isinstance(event, Close)
    assert event.code == CloseCode.BAD_HELLO
    err = fatal_error(event)
    assert err.code == "bad_frame"
    assert in_message in err.message
    assert not sess.registered


@pytest.mark.parametrize("version", [0, 2, 99])
def test_bad_version_closes_unsupported_version(version: int) -> None:
    sess = ServerSession()
    [event] = sess.receive(hello(v=version))
    assert isinstance(event, Close)
    assert event.code == CloseCode.UNSUPPORTED_VERSION
    assert event.reason == "unsupported_version"
    err = fatal_error(event)
    assert err.code == "unsupported_version"
    assert err.message.startswith(f"hello.v: version {version} is not supported")
    assert not sess.registered


@pytest.mark.parametrize("token", [None, "", "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]])
def test_wrong_or_missing_token_closes_unauthorized(token: str | None) -> None:
    sess = ServerSession(token_for(TOKEN))
    fields = {} if token is None else {"token": token}
    [event] = sess.receive(hello(**fields))
    assert isinstance(event, Close)
    assert event.code == CloseCode.UNAUTHORIZED
    assert event.reason == "unauthorized"
    err = fatal_error(event)
    assert err.code == "unauthorized"
    assert err.message == "hello.token: wrong or missing"
    assert not sess.registered
    assert sess.cid is None


def test_right_token_registers() -> None:
    sess = ServerSession(token_for(TOKEN))
    assert sess.receive(hello(token=TOKEN, cid=CID, acked=4)) == [Register("__UNI__A", CID, 4)]
    assert sess.registered
    assert sess.appid == "__UNI__A"


def test_unserved_appid_closes_unknown_app() -> None:
    sess = ServerSession(token_for(TOKEN, served=("__UNI__B",)))
    [event] = sess.receive(hello(token=TOKEN, cid=CID))
    assert isinstance(event, Close)
    assert event.code == CloseCode.UNKNOWN_APP
    assert event.reason == "unknown_app"
    err = fatal_error(event)
    assert err.code == "unknown_app"
    assert err.message == "hello.appid: __UNI__A is not served here"
    assert not sess.registered
    assert sess.appid is None
    assert sess.cid is None


def test_unknown_app_is_checked_before_the_token() -> None:
    sess = ServerSession(token_for(TOKEN, served=()))
    [event] = sess.receive(hello(token="wrong-token-0123456789"))
    assert isinstance(event, Close)
    assert event.code == CloseCode.UNKNOWN_APP


def test_token_is_looked_up_for_the_hello_appid() -> None:
    asked: list[str] = []

    def client_token(appid: str) -> str | None:
        asked.append(appid)
        return {"__UNI__A": "token-of-app-a-0123", "__UNI__B": "token-of-app-b-0123"}[appid]

    sess = ServerSession(client_token)
    [event] = sess.receive(hello(token="token-of-app-b-0123"))
    assert isinstance(event, Close)
    assert event.code == CloseCode.UNAUTHORIZED
    assert asked == ["__UNI__A"]
    sess = ServerSession(client_token)
    [ok] = sess.receive(hello(token="token-of-app-a-0123", cid=CID))
    assert ok == Register("__UNI__A", CID, 0)


def test_none_token_for_a_served_app_needs_no_token() -> None:
    sess = ServerSession(token_for(None))
    assert sess.receive(hello(cid=CID)) == [Register("__UNI__A", CID, 0)]


def test_token_is_ignored_when_none_is_required() -> None:
    sess = ServerSession()
    assert sess.receive(hello(token="anything", cid=CID)) == [Register("__UNI__A", CID, 0)]


def test_hello_without_cid_allocates_one() -> None:
    sess = ServerSession()
    [event] = sess.receive(hello(acked=0))
    assert isinstance(event, Register)
    assert re.fullmatch(r"[0-9a-f]{32}", event.cid)
    assert sess.cid == event.cid
    [other] = ServerSession().receive(hello())
    assert isinstance(other, Register)
    assert other.cid != event.cid


def test_hello_with_cid_keeps_it() -> None:
    sess = ServerSession()
    assert sess.receive(hello(cid=CID, acked=17)) == [Register("__UNI__A", CID, 17)]
    assert sess.cid == CID


def test_welcome_frame() -> None:
    sess = registered()
    assert parse_server_frame(sess.welcome(12)) == Welcome(cid=CID, acked=12)


# after registration ---------------------------------------------------------------------


def test_ack_after_registration() -> None:
    assert registered().receive('{"type": "ack", "seq": 3}') == [Acked(3)]


def test_receipt_after_registration() -> None:
    sess = registered()
    text = '{"type": "receipt", "id": "m1", "event": "click"}'
    assert sess.receive(text) == [Receipted("m1", None, "click")]


def test_receipt_carries_its_taskid() -> None:
    sess = registered()
    text = '{"type": "receipt", "id": "m1", "taskid": "RASL_0510_ab", "event": "display"}'
    assert sess.receive(text) == [Receipted("m1", "RASL_0510_ab", "display")]


@pytest.mark.parametrize(
    ("text", "in_message"),
    [
        ('{"type": "ack", "seq": 0}', "seq"),
        ("{", "not JSON"),
        (b"\x00", "binary"),
        ('{"type": "push"}', "push"),
    ],
)
def test_invalid_frame_after_registration_gets_a_non_fatal_reply(
    text: str | bytes, in_message: str
) -> None:
    sess = registered()
    [event] = sess.receive(text)
    assert isinstance(event, Reply)
    err = parse_server_frame(event.frame)
    assert isinstance(err, Error)
    assert err.fatal is False
    assert err.code == "bad_frame"
    assert in_message in err.message
    assert sess.registered
    assert sess.receive('{"type": "ack", "seq": 2}') == [Acked(2)]


def test_second_hello_gets_a_reply_and_keeps_the_registration() -> None:
    sess = registered()
    [event] = sess.receive(hello(cid="fedcba9876543210fedcba9876543210"))
    assert isinstance(event, Reply)
    err = parse_server_frame(event.frame)
    assert err == Error(code="bad_frame", message="hello: already registered", fatal=False)
    assert sess.cid == CID


def test_error_frame_from_the_client_is_not_answered() -> None:
    assert registered().receive('{"type": "error", "code": "x", "message": "y"}') == []


# push_frame -----------------------------------------------------------------------------


def test_push_frame_parses_as_a_server_frame() -> None:
    body = {
        "title": "标题",
        "content": "内容",
        "payload": {"a": [1, 2]},
        "force_notification": True,
        "channelId": "ch1",
    }
    text = push_frame(42, "msg-42", body)
    assert "标题" in text  # not escaped
    frame = parse_server_frame(text)
    assert isinstance(frame, Push)
    assert (frame.seq, frame.id) == (42, "msg-42")
    assert frame.message.title == "标题"
    assert frame.message.content == "内容"
    assert frame.message.payload == {"a": [1, 2]}
    assert frame.message.force_notification is True
    assert frame.message.extra == {"channelId": "ch1"}
    assert frame.message.to_dict() == body


def test_push_frame_with_string_payload() -> None:
    frame = parse_server_frame(push_frame(1, "m", {"title": "t", "content": "c", "payload": "p"}))
    assert isinstance(frame, Push)
    assert frame.message.payload == "p"


def test_deeply_nested_first_frame_closes_bad_hello() -> None:
    [event] = ServerSession().receive("[" * 100_000)
    assert isinstance(event, Close)
    assert event.code == CloseCode.BAD_HELLO

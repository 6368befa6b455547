"""session.py: the daemon's side of one gateway session, without I/O."""

from __future__ import annotations

import json

import pytest

from unipush_bridge.runtime.session import (
    ClientSession,
    Deliver,
    GatewayError,
    Refused,
    Registered,
    State,
)
from unipush_bridge.wire.gateway import PushMessage

CID = "0123456789abcdef0123456789abcdef"
OTHER_CID = "fedcba9876543210fedcba9876543210"


def welcome(cid: str = CID, acked: int = 0) -> str:
    return json.dumps({"type": "welcome", "v": 1, "cid": cid, "acked": acked})


def push(seq: int, msg_id: str = "m", title: str = "T") -> str:
    return json.dumps(
        {
            "type": "push",
            "seq": seq,
            "id": msg_id,
            "message": {"title": title, "content": "C", "payload": {"n": seq}},
        }
    )


def registered(
    cid: str | None = CID, acked: int = 0, welcome_acked: int | None = None
) -> ClientSession:
    sess = ClientSession("__UNI__A", cid, acked)
    sess.hello()
    events = sess.receive(welcome(cid or CID, acked if welcome_acked is None else welcome_acked))
    assert len(events) == 1
    assert isinstance(events[0], Registered)
    return sess


def state_of(sess: ClientSession) -> State:
    """Read the state afresh (mypy would keep an earlier narrowing of ``sess.state``)."""
    return sess.state


# hello ----------------------------------------------------------------------------------


def test_hello_frame_content() -> None:
    sess = ClientSession("__UNI__A", CID, 42, token="secret-token")
    assert sess.state is State.IDLE
    frame = json.loads(sess.hello())
    assert frame == {
        "type": "hello",
        "v": 1,
        "appid": "__UNI__A",
        "cid": CID,
        "acked": 42,
        "token": "secret-token",
    }
    assert state_of(sess) is State.HELLO_SENT


def test_hello_without_cid_or_token_leaves_them_out() -> None:
    frame = json.loads(ClientSession("app", None, 0).hello())
    assert frame == {"type": "hello", "v": 1, "appid": "app", "acked": 0}


def test_hello_twice_is_a_programming_error() -> None:
    sess = ClientSession("app", None, 0)
    sess.hello()
    with pytest.raises(RuntimeError, match="hello already sent"):
        sess.hello()


# welcome --------------------------------------------------------------------------------


def test_welcome_for_a_new_cid() -> None:
    sess = ClientSession("app", None, 0)
    sess.hello()
    assert sess.receive(welcome(CID, 0)) == [Registered(CID, True, 0)]
    assert sess.cid == CID
    assert sess.acked == 0
    assert sess.state is State.REGISTERED


def test_welcome_for_the_known_cid_takes_the_gateway_cursor() -> None:
    sess = ClientSession("app", CID, 3)
    sess.hello()
    assert sess.receive(welcome(CID, 7)) == [Registered(CID, False, 7)]
    assert sess.acked == 7


def test_welcome_with_a_different_cid_is_new() -> None:
    sess = ClientSession("app", CID, 12)
    sess.hello()
    assert sess.receive(welcome(OTHER_CID, 0)) == [Registered(OTHER_CID, True, 0)]
    assert sess.cid == OTHER_CID
    assert sess.acked == 0


def test_second_welcome_is_refused_and_changes_nothing() -> None:
    sess = registered(CID, 5)
    events = sess.receive(welcome(OTHER_CID, 99))
    assert len(events) == 1
    assert isinstance(events[0], Refused)
    assert "welcome" in events[0].reason
    assert sess.cid == CID
    assert sess.acked == 5
    assert sess.state is State.REGISTERED


def test_welcome_before_hello_is_refused() -> None:
    sess = ClientSession("app", None, 0)
    events = sess.receive(welcome())
    assert len(events) == 1
    assert isinstance(events[0], Refused)
    assert sess.state is State.IDLE
    assert sess.cid is None


# push -----------------------------------------------------------------------------------


def test_push_before_welcome_is_refused() -> None:
    sess = ClientSession("app", None, 0)
    sess.hello()
    assert sess.receive(push(1)) == [Refused("push: arrived before welcome")]
    assert sess.state is State.HELLO_SENT


def test_push_before_hello_is_refused() -> None:
    sess = ClientSession("app", None, 0)
    assert sess.receive(push(1)) == [Refused("push: arrived before welcome")]


def test_push_after_welcome_is_delivered() -> None:
    sess = registered()
    assert sess.receive(push(3, "m3", "hello")) == [
        Deliver(3, "m3", PushMessage(title="hello", content="C", payload={"n": 3}))
    ]


def test_delivery_does_not_advance_the_cursor_by_itself() -> None:
    sess = registered(CID, 2)
    sess.receive(push(3))
    assert sess.acked == 2


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        b"binary",
        "[]",
        '{"type": "push", "seq": 0, "id": "m", "message": {"title": "t", "content": "c"}}',
        '{"type": "push", "seq": 1, "id": "m", "message": {"content": "c"}}',
        '{"type": "hello", "appid": "a"}',
    ],
)
def test_invalid_frame_is_refused_and_the_session_goes_on(text: str | bytes) -> None:
    sess = registered(CID, 1)
    events = sess.receive(text)
    assert len(events) == 1
    assert isinstance(events[0], Refused)
    assert events[0].reason
    assert sess.state is State.REGISTERED
    # the link stays usable
    assert sess.receive(push(2, "m2")) == [
        Deliver(2, "m2", PushMessage(title="T", content="C", payload={"n": 2}))
    ]


def test_refused_reason_names_the_field() -> None:
    sess = registered()
    [event] = sess.receive('{"type": "push", "seq": 1, "id": "m", "message": {"content": "c"}}')
    assert isinstance(event, Refused)
    assert event.reason == "push.message.title: field required"


def test_deeply_nested_frame_is_refused_not_raised() -> None:
    sess = registered()
    events = sess.receive("[" * 100_000)
    assert len(events) == 1
    assert isinstance(events[0], Refused)


def test_huge_integer_frame_is_refused_not_raised() -> None:
    sess = registered()
    events = sess.receive('{"type": "push", "seq": ' + "9" * 5000 + "}")
    assert len(events) == 1
    assert isinstance(events[0], Refused)


# acknowledgement ------------------------------------------------------------------------


def test_recorded_acks_only_beyond_the_cursor() -> None:
    sess = registered(CID, 5)
    assert sess.recorded(3) is None
    assert sess.recorded(5) is None
    assert sess.acked == 5
    ack = sess.recorded(6)
    assert ack is not None
    assert json.loads(ack) == {"type": "ack", "seq": 6}
    assert sess.acked == 6
    assert sess.recorded(6) is None


def test_recorded_is_cumulative() -> None:
    sess = registered(CID, 0)
    ack = sess.recorded(10)
    assert ack is not None
    assert json.loads(ack) == {"type": "ack", "seq": 10}
    assert sess.recorded(8) is None
    assert sess.recorded(9) is None
    assert sess.acked == 10
    ack = sess.recorded(11)
    assert ack is not None
    assert json.loads(ack)["seq"] == 11


def test_recorded_uses_the_cursor_from_welcome() -> None:
    sess = registered(CID, acked=2, welcome_acked=20)
    assert sess.recorded(15) is None
    ack = sess.recorded(21)
    assert ack is not None
    assert json.loads(ack) == {"type": "ack", "seq": 21}


def test_receipt_frame() -> None:
    sess = registered()
    assert json.loads(sess.receipt("m9", "RASS_1", "click")) == {
        "type": "receipt",
        "id": "m9",
        "taskid": "RASS_1",
        "event": "click",
    }
    # A local notification has no task: the field is left out.
    assert json.loads(sess.receipt("m9", None, "display")) == {
        "type": "receipt",
        "id": "m9",
        "event": "display",
    }


# gateway errors -------------------------------------------------------------------------


@pytest.mark.parametrize("fatal", [True, False])
def test_gateway_error_frames(fatal: bool) -> None:
    sess = ClientSession("app", None, 0)
    sess.hello()
    text = json.dumps({"type": "error", "code": "unauthorized", "message": "m", "fatal": fatal})
    assert sess.receive(text) == [GatewayError("unauthorized", "m", fatal)]


def test_gateway_error_fatal_defaults_to_false() -> None:
    sess = registered()
    text = json.dumps({"type": "error", "code": "bad_frame", "message": "x"})
    assert sess.receive(text) == [GatewayError("bad_frame", "x", False)]
    assert sess.state is State.REGISTERED

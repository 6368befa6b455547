"""wire/gateway.py: integers on the wire stay in SQLite's range (issue 10 item 15)."""

from __future__ import annotations

import json

import pytest

from unipush_bridge.wire.gateway import (
    MAX_SEQ,
    Ack,
    Hello,
    ProtocolError,
    parse_client_frame,
    parse_server_frame,
)

CID = "0123456789abcdef0123456789abcdef"


def test_the_largest_seq_is_sqlites_largest_integer() -> None:
    """issue 10 item 15: seq and acked are 0 <= n < 2**63."""
    assert MAX_SEQ == 2**63 - 1
    assert parse_client_frame(json.dumps({"type": "ack", "seq": MAX_SEQ})) == Ack(seq=MAX_SEQ)
    hello = parse_client_frame(json.dumps({"type": "hello", "appid": "a", "acked": MAX_SEQ}))
    assert isinstance(hello, Hello) and hello.acked == MAX_SEQ


@pytest.mark.parametrize("value", [2**63, 2**64, 10**40])
@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "ack"}, "seq"),
        ({"type": "hello", "appid": "a"}, "acked"),
        ({"type": "hello", "appid": "a"}, "v"),
    ],
)
def test_client_integers_past_sqlite_are_refused(
    frame: dict[str, object], field: str, value: int
) -> None:
    """issue 10 item 15: 2**63 reached SQLite and raised OverflowError (an HTTP 500)."""
    with pytest.raises(ProtocolError, match=rf"^{frame['type']}\.{field}: must be at most "):
        parse_client_frame(json.dumps({**frame, field: value}))


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "push", "seq": 2**63, "id": "m", "message": {"title": "t", "content": "c"}},
        {"type": "welcome", "cid": CID, "acked": 2**63},
        {"type": "welcome", "cid": CID, "backlog": 2**63},
    ],
)
def test_server_integers_past_sqlite_are_refused(frame: dict[str, object]) -> None:
    """issue 10 item 15: the daemon's store has the same limit."""
    with pytest.raises(ProtocolError, match="must be at most 9223372036854775807"):
        parse_server_frame(json.dumps(frame))

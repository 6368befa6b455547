"""Text from a sender that D-Bus cannot carry, on the real dunst stack (issue 10 item 3).

A NUL byte or a lone surrogate in a title, body or category used to make dbus-fast
raise; the notifier then took the live server for gone, and every push for the next
30 s was held, unseen.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc, Proc, wait_for


@pytest.fixture
def stack(tmp_path: Path, dunst: DunstStack, procs: list[Proc]) -> tuple[GatewayProc, DaemonProc]:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    daemon = DaemonProc(
        tmp_path / "daemon",
        gateway.ws_url,
        env={**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"},
    ).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return gateway, daemon


def test_nul_in_a_push_is_shown_cleaned_and_the_next_push_is_shown_too(
    dunst: DunstStack, stack: tuple[GatewayProc, DaemonProc]
) -> None:
    """issue 10 item 3: a NUL in title and content is replaced, not a dead server."""
    gateway, daemon = stack
    cid = daemon.cid()
    status, answer = gateway.send(
        {"push_clientid": cid, "title": "bad\x00title", "content": "x\x00y", "payload": "p"}
    )
    assert status == 200, answer
    (seen,) = dunst.wait_seen(1)
    assert seen["summary"] == "bad\ufffdtitle"
    assert "\x00" not in seen["body"]
    gateway.send({"push_clientid": cid, "title": "next", "content": "fine", "payload": "p"})
    seen = dunst.wait_seen(2)
    assert seen[1]["summary"] == "next"
    assert daemon.status()["notifications"] == "available"
    assert daemon.status()["held_for_listener"] == 0


def test_nul_and_surrogates_in_local_options_do_not_switch_notifications_off(
    dunst: DunstStack, stack: tuple[GatewayProc, DaemonProc]
) -> None:
    """issue 10 item 3: createPushMessage with NUL in the category and controls in the
    title is shown; status stays available. (A lone surrogate is refused by the local
    API before it gets here; the notifier's own cleaning of one is a unit test.)"""
    _, daemon = stack
    # A raw line, as any client may send it.
    params = {"content": "body", "title": "t\x01\x7f\x9b", "category": "im\x00.received"}
    assert create(daemon.socket, params)["errMsg"] == "createPushMessage:ok"
    (seen,) = dunst.wait_seen(1)
    assert seen["category"] == "im\ufffd.received"
    assert seen["summary"] == "t\ufffd\ufffd\ufffd"
    assert daemon.status()["notifications"] == "available"
    assert create(daemon.socket, {"content": "after"})["errMsg"] == "createPushMessage:ok"
    assert dunst.wait_seen(2)[1]["body"] == "after"


def create(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One createPushMessage as a raw line (ASCII JSON: controls travel as escapes)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        line = json.dumps({"id": 1, "method": "createPushMessage", "params": params})
        sock.sendall(line.encode() + b"\n")
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())["result"]
        return answer

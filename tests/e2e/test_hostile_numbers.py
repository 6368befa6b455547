"""A number too large for a double (``1e400``) in a push or a createPushMessage, on the
real dunst stack. Python's json reads it as Infinity (not through ``parse_constant``,
so the rule that refuses ``NaN`` and ``Infinity`` never saw it) and JSON has no way
to write that back: the notification was shown and recorded, and then every
``history`` answer that reached its entry failed with an internal error, the tray's
history menu with it; the push's receive event was skipped for every listener.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import ReconnectingListener, log_events
from tests.faults.test_hostile_gateway import FakeGateway, welcome
from tests.notifstack import DunstStack
from tests.procs import DaemonProc, Proc, wait_for


def call(path: Path, line: str) -> dict[str, Any]:
    """One raw request line, as any local process may send it."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())["result"]
        return answer


@pytest.fixture
def daemon(tmp_path: Path, dunst: DunstStack, procs: list[Proc]) -> DaemonProc:
    daemon = DaemonProc(
        tmp_path / "daemon", None, env={**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    ).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return daemon


def test_a_local_number_past_a_double_is_refused_and_history_keeps_working(
    dunst: DunstStack, daemon: DaemonProc
) -> None:
    big = '{"id": 1, "method": "createPushMessage", "params": {"content": "big", "payload": 1e400}}'
    answer = call(daemon.socket, big)
    assert answer["errMsg"].startswith("request:fail"), answer
    assert "1e400" in answer["errMsg"], answer
    ok = '{"id": 2, "method": "createPushMessage", "params": {"content": "fine", "payload": 1.5}}'
    assert call(daemon.socket, ok)["errMsg"] == "createPushMessage:ok"
    (seen,) = dunst.wait_seen(1)
    assert seen["body"] == "fine"
    history = call(daemon.socket, '{"id": 3, "method": "history", "params": {"limit": 5}}')
    assert history["errMsg"] == "history:ok", history
    assert [e["content"] for e in history["entries"]] == ["fine"]


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway([[welcome()]]).start()
    yield gw
    gw.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[ReconnectingListener]:
    """Subscribed to the daemon of the test (started by the test, on the same path)."""
    listener = ReconnectingListener(tmp_path / "daemon" / "api.sock", tmp_path / "listener.out")
    yield listener.start()
    listener.stop()


def test_a_pushed_number_past_a_double_is_refused_and_the_link_stays(
    tmp_path: Path,
    dunst: DunstStack,
    procs: list[Proc],
    gateway: FakeGateway,
    listener: ReconnectingListener,
) -> None:
    bad = (
        '{"type": "push", "seq": 1, "id": "aaaa", "message": '
        '{"title": "big", "content": "c", "payload": {"n": -1, "x": -1e400}}}'
    )
    good = {"title": "t", "content": "fine", "payload": {"n": 1, "x": 2.5e300}}
    daemon = DaemonProc(
        tmp_path / "daemon",
        f"ws://127.0.0.1:{gateway.port}",
        env={**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"},
    ).start()
    procs.append(daemon)
    listener.wait_subscribed()
    wait_for(lambda: daemon.status()["listeners"] == 1, 10, "the listener")
    gateway.then_send([bad, json.dumps({"type": "push", "seq": 2, "id": "bb", "message": good})])
    assert listener.wait_numbers({1}, timeout=10) == [1]
    wait_for(lambda: 2 in gateway.acks(0), 10, "the ack of seq 2")
    (refused,) = log_events(daemon, "refused a frame from the gateway")
    assert "-1e400 is too large for a number" in refused["reason"], refused
    assert not log_events(daemon, "an event cannot be encoded for the local API; skipped")
    assert len(gateway.hellos) == 1

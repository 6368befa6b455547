"""The long-polled status (``status {"after": n}``) on a real daemon process over its
real Unix socket: it waits while nothing a watcher shows moves, and answers at once
when something does (a push shown, quiet hours toggled, the link lost). The tray
watches this way instead of asking twice a second."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import NO_SERVER
from tests.integration.test_local_api_clients import Line, send_push
from tests.procs import DaemonProc, GatewayProc


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    proc = DaemonProc(tmp_path_factory.mktemp("watch"), None, env=NO_SERVER)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def changes_now(client: Line, rid: int) -> int:
    client.send(rid, "status")
    result = client.answer(rid)
    assert result["errMsg"] == "status:ok", result
    count = result["changes"]
    assert isinstance(count, int)
    return count


def woken_by(
    watcher: Line, act: Callable[[], object], timeout: float = 20
) -> tuple[dict[str, Any], float]:
    """A watching status on ``watcher``, then ``act``: the answer, and how long after
    ``act`` began it came."""
    count = changes_now(watcher, 1)
    watcher.send(2, "status", after=count, timeout=timeout)
    time.sleep(0.3)  # the call is waiting
    started = time.monotonic()
    act()
    woke = watcher.answer(2, timeout=timeout + 10)
    return woke, time.monotonic() - started


def test_it_waits_while_nothing_moves_and_answers_when_a_push_comes(daemon: DaemonProc) -> None:
    client = Line(daemon.socket)
    try:
        count = changes_now(client, 1)
        started = time.monotonic()
        client.send(2, "status", after=count, timeout=0.6)
        idle = client.answer(2)
        waited = time.monotonic() - started
        assert idle["changes"] == count and 0.5 <= waited < 3, (idle["changes"], waited)

        client.send(3, "status", after=count, timeout=20)
        time.sleep(0.3)
        started = time.monotonic()
        send_push(daemon, "moves")  # no listener: shown (no server here) and in history
        moved = client.answer(3, timeout=10)
        assert moved["changes"] != count
        assert time.monotonic() - started < 5
    finally:
        client.close()


def test_toggling_quiet_hours_wakes_a_watcher(daemon: DaemonProc) -> None:
    watcher, other = Line(daemon.socket), Line(daemon.socket)

    def quiet_on() -> None:
        other.send(1, "setQuietHours", on=True)
        assert other.answer(1)["errMsg"] == "setQuietHours:ok"

    try:
        woke, waited = woken_by(watcher, quiet_on)
        assert woke["quiet"]["active"] is True
        assert waited < 5
        other.send(2, "setQuietHours", on=None)
        assert other.answer(2)["errMsg"] == "setQuietHours:ok"
    finally:
        watcher.close()
        other.close()


def test_a_stale_count_answers_at_once(daemon: DaemonProc) -> None:
    """A count from an earlier run of the daemon (the tray outlived it) must not wait."""
    client = Line(daemon.socket)
    try:
        count = changes_now(client, 1)
        started = time.monotonic()
        client.send(2, "status", after=count + 1000, timeout=20)
        assert client.answer(2)["changes"] == count
        assert time.monotonic() - started < 2
    finally:
        client.close()


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"after": "1"}, "status:fail after must be a whole number"),
        ({"after": True}, "status:fail after must be a whole number"),
        ({"after": 1.5}, "status:fail after must be a whole number"),
        ({"after": 0, "timeout": -1}, "status:fail timeout must be a number of seconds, 0 or more"),
        (
            {"after": 0, "timeout": "5"},
            "status:fail timeout must be a number of seconds, 0 or more",
        ),
    ],
)
def test_bad_watch_params_name_the_field(
    daemon: DaemonProc, params: dict[str, object], reason: str
) -> None:
    client = Line(daemon.socket)
    try:
        client.send(1, "status", **params)
        assert client.answer(1)["errMsg"].startswith(reason)
    finally:
        client.close()


def test_the_link_going_down_wakes_a_watcher(tmp_path: Path) -> None:
    gateway = GatewayProc(tmp_path / "gw").start()
    proc = DaemonProc(tmp_path / "d", gateway.ws_url, env=NO_SERVER).start()
    client = Line(proc.socket)
    try:
        count = changes_now(client, 1)
        client.send(2, "status", after=count, timeout=30)
        time.sleep(0.3)
        started = time.monotonic()
        gateway.kill()
        woke = client.answer(2, timeout=15)
        assert woke["connection"]["state"] != "connected", woke["connection"]
        assert time.monotonic() - started < 10
    finally:
        client.close()
        proc.kill()
        gateway.kill()


def test_a_listener_subscribing_wakes_a_watcher(tmp_path: Path) -> None:
    """``listeners`` is in the status: an app that subscribes with nothing held for it
    (a daemon of its own: the module's holds pushes for the first one) moves it as
    surely as one that leaves."""
    daemon = DaemonProc(tmp_path / "d", None, env=NO_SERVER).start()
    watcher, app = Line(daemon.socket), Line(daemon.socket)

    def subscribe() -> None:
        app.send(1, "onPushMessage", ack=True)
        assert app.answer(1)["errMsg"] == "onPushMessage:ok"

    try:
        woke, waited = woken_by(watcher, subscribe)
        assert woke["listeners"] == 1 and waited < 5, (woke["listeners"], waited)
    finally:
        app.close()
        watcher.close()
        daemon.kill()


def quiet_span_around_now() -> str:
    """A quiet_hours span that holds the local time now (and for the next half hour)."""
    now = time.localtime()
    start = (now.tm_hour * 60 + now.tm_min - 1) % 1440
    end = (start + 31) % 1440
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def test_quiet_hours_beginning_by_schedule_wake_a_watcher(tmp_path: Path) -> None:
    """A reload (SIGHUP) whose quiet_hours span holds the time now begins quiet hours
    with nothing to carry out: the watcher must still hear of it, not a minute later."""
    conf = tmp_path / "daemon.toml"
    conf.write_text('log_level = "info"\n')
    proc = DaemonProc(tmp_path / "d", None, env=NO_SERVER, extra=["--config", str(conf)]).start()
    client = Line(proc.socket)
    try:
        conf.write_text(f'log_level = "info"\nquiet_hours = "{quiet_span_around_now()}"\n')
        woke, waited = woken_by(client, lambda: proc.send_signal(signal.SIGHUP), timeout=30)
        assert woke["quiet"]["active"] is True and waited < 10, (woke["quiet"], waited)
    finally:
        client.close()
        proc.kill()

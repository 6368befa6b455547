"""Quiet hours through the driver (issue 14 item 4): a real SQLite store, the real
local API server on a Unix socket, a recording notifier; the local time of day is
injected so a schedule edge comes within a fraction of a second."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.runtime import driver as driver_module
from unipush_bridge.runtime.core import QUIET_REASON, Config, Core, parse_quiet_hours
from unipush_bridge.runtime.driver import Driver
from unipush_bridge.runtime.localapi import LocalApiServer
from unipush_bridge.runtime.store import Store
from unipush_bridge.wire import local as wire

from .test_driver import APPID, Screen, deliver, msg

H = 3600.0


def make(store: Store, screen: Screen, local: Callable[[float], float], **config: Any) -> Driver:
    counter = itertools.count(1)
    return Driver(
        core=Core(Config(app_name="Desk", **config), lambda: f"id{next(counter)}"),
        store=store,
        notifier=screen,  # type: ignore[arg-type]
        appid=APPID,
        gateway_key="embedded",
        hold_timeout=0.05,
        local=local,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.sqlite3")
    s.save_identity("embedded", APPID, "c" * 32, 0)
    yield s
    s.close()


@pytest.fixture
def sock_path() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="upq-"))
    yield base / "run" / "d.sock"
    shutil.rmtree(base, ignore_errors=True)


def running_local(start: float) -> Callable[[float], float]:
    """Local time of day that starts at ``start`` and runs with the real clock."""
    t0 = time.monotonic()
    return lambda wall: start + (time.monotonic() - t0)


async def wait_for(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_the_schedule_ends_quiet_with_one_summary(store: Store) -> None:
    """issue 14 item 4: at 06:59:59.6 a push is recorded and counted, not shown; the
    driver's timer wakes at the 07:00 edge and shows one summary."""
    screen = Screen()
    d = make(
        store, screen, running_local(7 * H - 0.4), quiet_hours=parse_quiet_hours("22:00-07:00")
    )
    await d.start()
    try:
        await deliver(d, (1, "m1", msg(1)), (2, "m2", msg(2)))
        assert screen.shown == []
        entries = store.history(5)
        assert [e["not_shown"] for e in entries] == [QUIET_REASON] * 2
        assert sorted(e["data"]["payload"]["n"] for e in entries) == [1, 2]
        assert store.quiet() == (None, 2)
        assert d.get_quiet_hours()["active"] is True
        assert await wait_for(lambda: len(screen.shown) == 1)
        assert screen.shown[0].body == "2 notifications arrived during quiet hours"
        assert store.quiet() == (None, 0)
        await asyncio.sleep(0.2)
        assert len(screen.shown) == 1  # one summary
        await deliver(d, (3, "m3", msg(3)))
        assert [r.title for r in screen.shown[1:]] == ["t3"]
    finally:
        await d.stop(0.5)


async def call(sock: Path, method: str, params: dict[str, Any]) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(wire.encode_request(wire.Request(1, method, params)))
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 3.0)
    writer.close()
    return dict(json.loads(line)["result"])


async def test_toggle_over_the_local_api_survives_a_restart(store: Store, sock_path: Path) -> None:
    """issue 14 item 4: setQuietHours on holds back a push; the toggle and the count
    are on disk, so a new daemon on the same store is still quiet; off gives the
    summary; a bad ``on`` names the rule."""
    noon = running_local(12 * H)
    screen = Screen()
    d = make(store, screen, noon, quiet_hours=parse_quiet_hours("22:00-07:00"))
    await d.start()
    srv = LocalApiServer(d, sock_path, dict)
    await srv.start()
    try:
        got = await call(sock_path, "setQuietHours", {"on": True})
        assert got["errMsg"] == "setQuietHours:ok" and got["quiet"]["mode"] == "on"
        await deliver(d, (1, "m1", msg(1)))
        assert screen.shown == []
        bad = await call(sock_path, "setQuietHours", {"on": "yes"})
        assert bad["errMsg"] == (
            "setQuietHours:fail on must be true, false or null (follow the schedule)"
        )
        missing = await call(sock_path, "setQuietHours", {})
        assert "on is required" in missing["errMsg"]
    finally:
        await srv.stop()
        await d.stop(0.5)
    # A restart: the toggle and the count come back from the store.
    screen2 = Screen()
    d2 = make(store, screen2, noon, quiet_hours=parse_quiet_hours("22:00-07:00"))
    await d2.start()
    srv = LocalApiServer(d2, sock_path, dict)
    await srv.start()
    try:
        got = await call(sock_path, "getQuietHours", {})
        assert got["quiet"] == {
            "active": True,
            "mode": "on",
            "schedule": "22:00-07:00",
            "breakthrough": False,
            "unread": 1,
        }
        got = await call(sock_path, "setQuietHours", {"on": None})  # auto: noon is not quiet
        assert got["quiet"]["active"] is False and got["quiet"]["mode"] == "auto"
        assert [r.body for r in screen2.shown] == ["1 notification arrived during quiet hours"]
        assert store.quiet() == (None, 0)
    finally:
        await srv.stop()
        await d2.stop(0.5)


async def test_a_clock_step_into_and_out_of_quiet_hours_is_seen(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 item 4: the timer waits for the next edge on the monotonic clock but
    looks at the local time at least every QUIET_CHECK_S, so a step of the clock (or a
    time zone change) into or out of quiet hours is seen without waiting for the edge
    the old time pointed at."""
    monkeypatch.setattr(driver_module, "QUIET_CHECK_S", 0.05)
    now = {"local": 12 * H}
    screen = Screen()
    d = make(store, screen, lambda wall: now["local"], quiet_hours=parse_quiet_hours("22:00-07:00"))
    await d.start()
    try:
        assert not d.core.quiet
        now["local"] = 23 * H  # a step forward by 11 h: the 22:00 edge was 10 h away
        assert await wait_for(lambda: d.core.quiet, 1.0)
        await deliver(d, (1, "m1", msg(1)))
        assert screen.shown == []
        now["local"] = 8 * H
        assert await wait_for(lambda: len(screen.shown) == 1, 1.0)
        assert screen.shown[0].body == "1 notification arrived during quiet hours"
    finally:
        await d.stop(0.5)


async def test_quiet_hours_beginning_by_schedule_wake_a_watcher(store: Store) -> None:
    """At the 22:00 edge quiet begins with nothing to carry out (the summary comes when
    it ends): a watcher's long-polled status (the tray's icon) must still wake, not
    wait out its timeout with quiet shown off."""
    screen = Screen()
    d = make(
        store, screen, running_local(22 * H - 0.3), quiet_hours=parse_quiet_hours("22:00-07:00")
    )
    await d.start()
    try:
        assert not d.core.quiet
        seen = d.changes.count
        started = time.monotonic()
        await d.changes.wait(seen, 5.0)
        assert d.core.quiet, "woke before quiet began"
        assert time.monotonic() - started < 2.0, "quiet began and no watcher heard of it"
    finally:
        await d.stop(0.5)

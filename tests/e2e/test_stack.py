"""Tests of the notification stack itself: if these fail, no other e2e result means anything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess

import pytest
from desktop_notifier import DesktopNotifier

from tests.notifstack import DunstStack


def notify_send(stack: DunstStack, *args: str) -> None:
    """Send with libnotify's CLI under the stack's environment (a separate client process).

    Checked at run time, not collection time: the session fixture may have just installed it.
    """
    if shutil.which("notify-send") is None:
        pytest.skip("notify-send (libnotify-bin) not installed")
    subprocess.run(
        ["notify-send", *args], env=stack.env, check=True, timeout=10, stdin=subprocess.DEVNULL
    )


async def disconnect(notifier: DesktopNotifier) -> None:
    """Drop the notifier's bus connection so its socket does not outlive the test's loop.

    desktop-notifier 6.2.0 has no public close; ``_backend.bus`` is private (hence getattr).
    """
    bus = getattr(getattr(notifier, "_backend", None), "bus", None)
    if bus is not None:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), timeout=5)


def test_stack_is_dunst_on_a_private_bus(dunst: DunstStack) -> None:
    """Tests must talk to our dunst on our bus, never to a desktop session's server."""
    assert dunst.running
    assert dunst.server_information()[0] == "dunst"
    assert dunst.bus_address.startswith("unix:path=" + str(dunst.dir))
    assert "WAYLAND_DISPLAY" not in dunst.env
    assert dunst.env["DISPLAY"] == dunst.display
    assert dunst.count_displayed() == 0
    assert dunst.seen() == []


def test_use_env_points_at_stack_and_restores(
    dunst: DunstStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process clients get the private bus only inside the block; nothing leaks out."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-9")
    monkeypatch.delenv("DISPLAY", raising=False)
    with dunst.use_env():
        assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == dunst.bus_address
        assert os.environ["DISPLAY"] == dunst.display
        assert "WAYLAND_DISPLAY" not in os.environ
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/nonexistent"
    assert os.environ["WAYLAND_DISPLAY"] == "wayland-9"
    assert "DISPLAY" not in os.environ


def test_notify_send_reaches_dunst(dunst: DunstStack) -> None:
    """A separate client process using stack.env is seen, displayed and logged by the monitor."""
    notify_send(dunst, "-a", "e2e-app", "Hello summary", "the body")

    (rec,) = dunst.wait_seen(1)
    assert rec["appname"] == "e2e-app"
    assert rec["summary"] == "Hello summary"
    assert rec["body"] == "the body"
    assert rec["urgency"] == "NORMAL"
    assert dunst.count_displayed() == 1

    notify_in_log = dunst.monitor_log()
    if shutil.which("dbus-monitor"):
        assert "member=Notify" in notify_in_log
        assert 'string "Hello summary"' in notify_in_log


def test_seen_keeps_tabs_newlines_and_category(dunst: DunstStack) -> None:
    """The record log must round-trip awkward text exactly, or seen() assertions lie."""
    notify_send(dunst, "-a", "e2e", "-u", "critical", "-c", "im.received", "t\tab", "one\ntwo")

    (rec,) = dunst.wait_seen(1)
    assert rec["summary"] == "t\tab"
    assert rec["body"] == "one\ntwo"
    assert rec["urgency"] == "CRITICAL"
    assert rec["category"] == "im.received"


def test_reset_clears_screen_seen_and_monitor_and_fills_history(dunst: DunstStack) -> None:
    """Tests share one stack, so reset() must really isolate them; history() must parse."""
    notify_send(dunst, "-a", "e2e", "first", "1")
    notify_send(dunst, "-a", "e2e", "second", "2")
    dunst.wait_seen(2)
    dunst.wait_displayed(2)

    dunst.reset()

    assert dunst.count_displayed() == 0
    assert dunst.seen() == []
    assert "member=Notify" not in dunst.monitor_log()
    summaries = [entry["summary"] for entry in dunst.history()[:2]]
    assert summaries == ["second", "first"]  # newest first

    notify_send(dunst, "-a", "e2e", "third", "3")
    assert [r["summary"] for r in dunst.wait_seen(1)] == ["third"]


async def test_desktop_notifier_click_fires_on_clicked(dunst: DunstStack) -> None:
    """The path the daemon relies on: send via desktop-notifier, click, on_clicked runs."""
    clicked = asyncio.Event()
    dismissed = asyncio.Event()
    with dunst.use_env():
        notifier = DesktopNotifier(app_name="e2e-dn", app_icon=None)
        try:
            await asyncio.wait_for(
                notifier.send(
                    "Click me",
                    "body from desktop-notifier",
                    on_clicked=clicked.set,
                    on_dismissed=dismissed.set,
                ),
                timeout=10,
            )
            (rec,) = await asyncio.to_thread(dunst.wait_seen, 1)
            assert rec["appname"] == "e2e-dn"
            assert rec["summary"] == "Click me"
            assert rec["body"] == "body from desktop-notifier"
            assert not clicked.is_set()

            await asyncio.to_thread(dunst.action, 0)

            await asyncio.wait_for(clicked.wait(), timeout=5)
            assert not dismissed.is_set()
            # dunst runs the action but leaves the notification on screen
            assert await asyncio.to_thread(dunst.count_displayed) == 1
        finally:
            await disconnect(notifier)


async def test_desktop_notifier_close_fires_on_dismissed(dunst: DunstStack) -> None:
    """A user close (reason 2) must reach on_dismissed, and must not count as a click."""
    clicked = asyncio.Event()
    dismissed = asyncio.Event()
    with dunst.use_env():
        notifier = DesktopNotifier(app_name="e2e-dn", app_icon=None)
        try:
            await asyncio.wait_for(
                notifier.send(
                    "Dismiss me", "x", on_clicked=clicked.set, on_dismissed=dismissed.set
                ),
                timeout=10,
            )
            await asyncio.to_thread(dunst.wait_seen, 1)

            await asyncio.to_thread(dunst.close)

            await asyncio.wait_for(dismissed.wait(), timeout=5)
            assert not clicked.is_set()
            assert await asyncio.to_thread(dunst.count_displayed) == 0
        finally:
            await disconnect(notifier)

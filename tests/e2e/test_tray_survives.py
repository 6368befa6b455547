"""The tray outlives what it depends on (issue 14 item 3, "it survives the daemon
restarting and the tray host appearing late"), on real parts: a real daemon on dunst,
the tray as its own process, a real status-notifier-watcher. Everything is read back
over D-Bus, as a tray host reads it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.procs import wait_for
from tests.traystack import (
    bus_env,
    item_prop,
    registered_items,
    require_tray_tools,
    start,
    start_tray,
    stop,
    tray_name,
)
from unipush_bridge.testing.plugin import Unipush
from unipush_bridge.testing.stack import DaemonProcess, child_env


@pytest.mark.unipush_server("dunst")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_tray_reads_offline_while_the_daemon_is_gone_and_connected_after(
    unipush: Unipush, tmp_path: Path, sig: signal.Signals
) -> None:
    """issue 14 item 1 (of the brief; the issue's item 3): the daemon is killed under a
    running tray: its SNI IconName, Status and ToolTip read offline, the tray process
    stays; the daemon started again on the same state and socket: connected again,
    with the same cid, and the tray never re-registered or restarted."""
    require_tray_tools()
    daemon = unipush.daemon
    address = unipush.server.address
    env = bus_env(address, unipush.server.env)
    watcher = start(["status-notifier-watcher"], env, tmp_path / "watcher.log")
    tray = start_tray(daemon.socket, env, tmp_path / "tray.log")
    restarted: DaemonProcess | None = None
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: any(name in i for i in registered_items(address)), 10, "registered")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        assert item_prop(address, name, "Status") == "Active"

        os.killpg(daemon.child.pid, sig)
        wait_for(lambda: not daemon.child.alive(), 10, "the daemon to exit")
        wait_for(lambda: item_prop(address, name, "IconName") == "network-offline", 10, "offline")
        assert item_prop(address, name, "Status") == "NeedsAttention"
        assert "daemon not running" in item_prop(address, name, "ToolTip")[3]
        assert tray.poll() is None, "the tray exited with its daemon"

        # The same daemon again: same state dir (cid), same socket (stale after SIGKILL).
        (daemon.state_dir / "notify.sock").unlink(missing_ok=True)
        restarted = DaemonProcess(
            daemon.state_dir,
            unipush.gateway.ws_url,
            child_env(address, unipush.server.env),
            daemon.appid,
        )
        restarted.wait_ready()
        assert restarted.cid == daemon.cid
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "back")
        assert item_prop(address, name, "Status") == "Active"
        tip = item_prop(address, name, "ToolTip")[3]
        assert daemon.cid in tip and "daemon not running" not in tip
        assert tray.poll() is None
        assert tray_name(address) == name  # the same item throughout
    finally:
        stop(tray)
        stop(watcher)
        if restarted is not None:
            restarted.stop()


@pytest.mark.unipush_server("dunst")
def test_tray_registers_with_a_watcher_that_starts_late_and_again_after_it_restarts(
    unipush: Unipush, tmp_path: Path
) -> None:
    """issue 14 item 1 (of the brief): no watcher when the tray starts; one starts
    later: the item is in its RegisteredStatusNotifierItems (the tray saw it appear,
    NameOwnerChanged); the watcher dies and a new one starts (a panel restarting): the
    item registers with the new one too."""
    require_tray_tools()
    address = unipush.server.address
    env = bus_env(address, unipush.server.env)
    tray = start_tray(unipush.daemon.socket, env, tmp_path / "tray.log")
    procs = [tray]
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        assert registered_items(address) == []  # no watcher yet
        for round_ in range(2):
            watcher = start(["status-notifier-watcher"], env, tmp_path / f"watcher{round_}.log")
            procs.append(watcher)
            wait_for(
                lambda: any(name in i for i in registered_items(address)),
                10,
                f"registered with watcher {round_}",
            )
            stop(watcher)
            wait_for(lambda: registered_items(address) == [], 10, "the watcher gone")
        assert tray.poll() is None
    finally:
        for proc in reversed(procs):
            stop(proc)

"""The tray on real parts (issue 14 item 6): a real daemon on dunst under Xvfb, the
tray as its own process, then a real StatusNotifierWatcher started late (the tray
registers when it appears) and a real tray host (gtk-sni-tray-standalone) whose
screen is kept as tests/artifacts/tray.png."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.procs import wait_for
from tests.traystack import (
    ITEM,
    bus_env,
    call,
    prop,
    registered_items,
    require_tray_tools,
    screenshot,
    start,
    start_tray,
    stop,
    tray_name,
)
from unipush_bridge.testing.plugin import Unipush

MENU = "com.canonical.dbusmenu"


@pytest.mark.unipush_server("dunst")
def test_tray_registers_late_serves_its_menu_and_a_menu_click_reaches_the_app(
    unipush: Unipush, tmp_path: Path
) -> None:
    """issue 14 items 3 and 6: registration with a watcher that appears after the
    tray, the properties and menu read over D-Bus, a dbusmenu "clicked" on a recent
    notification delivers its click to a listener of the real daemon, a screenshot."""
    require_tray_tools()
    daemon = unipush.daemon
    address = unipush.server.address
    env = bus_env(address, unipush.server.env)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    unipush.notify(title="From the tray", content="pick me", payload={"k": "tray"})
    unipush.notification("From the tray")

    tray = start_tray(daemon.socket, env, tmp_path / "tray.log")
    procs = [tray]
    try:
        # The tray is up before any watcher: it waits for one.
        wait_for(lambda: tray_name(address) is not None, 10, "tray on the bus")
        name = tray_name(address)
        assert name is not None
        watcher = start(["status-notifier-watcher"], env, tmp_path / "watcher.log")
        procs.append(watcher)
        wait_for(lambda: any(name in i for i in registered_items(address)), 10, "registered")

        cid = daemon.cid
        wait_for(
            lambda: prop(address, name, "/StatusNotifierItem", ITEM, "IconName") == "mail-unread",
            10,
            "connected icon",
        )
        assert prop(address, name, "/StatusNotifierItem", ITEM, "Category") == "Communications"
        tip = prop(address, name, "/StatusNotifierItem", ITEM, "ToolTip")
        assert daemon.appid in tip[3] and cid in tip[3] and "1 unread" in tip[3]
        menu_path = prop(address, name, "/StatusNotifierItem", ITEM, "Menu")
        _revision, (_root, _props, children) = call(
            address, name, menu_path, MENU, "GetLayout", "iias", (0, -1, [])
        )
        labels = {c.value[0]: c.value[1].get("label") for c in children}
        first = children[0].value[0]  # recent notifications come first
        assert "From the tray" in labels[first].value
        assert "Quit tray" in [v.value for v in labels.values() if v is not None]

        host = start(["gtk-sni-tray-standalone"], env, tmp_path / "host.log")
        procs.append(host)

        unipush.listen()
        time.sleep(0.3)  # the listener is subscribed
        from dbus_fast import Variant

        call(
            address, name, menu_path, MENU, "Event", "isvu", (first, "clicked", Variant("s", ""), 0)
        )
        event = unipush.wait_for_event("click")
        assert event["data"]["payload"] == {"k": "tray"}

        time.sleep(1.5)  # the host draws the icon
        shot = screenshot(env, "tray.png")
        print(f"tray screenshot: {shot}")
        assert shot.stat().st_size > 0
        # Quit from the menu ends the tray process with exit 0.
        call(address, name, menu_path, MENU, "Event", "isvu", (4, "clicked", Variant("s", ""), 0))
        assert tray.wait(5) == 0
    finally:
        for proc in reversed(procs):
            stop(proc)

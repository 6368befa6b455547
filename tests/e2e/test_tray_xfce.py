"""The tray in a second real host (issue 14 item 6: "xfce4-panel, whose systray plugin
hosts SNI items"): xfce4-panel 4.18 under Xvfb, its settings from a private xfconfd,
its systray plugin being the StatusNotifierWatcher itself. The panel's screen is kept
as tests/artifacts/tray-xfce4-panel.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import wait_for
from tests.traystack import (
    XFCE_TOOLS,
    bus_env,
    call,
    colours,
    item_prop,
    registered_items,
    require_tray_tools,
    screenshot,
    start_tray,
    start_xfce_panel,
    stop,
    stop_group,
    tray_name,
    window_of,
)
from unipush_bridge.testing.plugin import Unipush


@pytest.mark.unipush_server("dunst")
def test_tray_appears_in_xfce4_panel_started_after_it(unipush: Unipush, tmp_path: Path) -> None:
    """issue 14 item 3 of the brief (the issue's item 6): the tray runs first; the panel
    starts later and its systray plugin takes org.kde.StatusNotifierWatcher; the tray
    registers with it, the panel draws its icon (the panel has more colours than with
    no item, and fewer again once the tray quits); the screenshot is kept."""
    require_tray_tools(XFCE_TOOLS)
    address = unipush.server.address
    env = bus_env(address, unipush.server.env)
    tray = start_tray(unipush.daemon.socket, env, tmp_path / "tray.log")
    panel = None
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        panel = start_xfce_panel(env, tmp_path)
        wait_for(lambda: any(name in i for i in registered_items(address)), 15, "registered")
        window = wait_for(lambda: window_of(env, "xfce4-panel"), 10, "the panel's window")

        def drawn() -> int:
            n = colours(screenshot(env, "tray-xfce4-panel.png", window))
            return n if n > 8 else 0

        with_item = wait_for(drawn, 10, "the panel to draw the item")
        shot = screenshot(env, "tray-xfce4-panel.png", window)
        print(f"xfce4-panel screenshot: {shot}")

        menu = item_prop(address, name, "Menu")
        call(address, name, menu, "com.canonical.dbusmenu", "Event", "isvu", _quit())
        assert tray.wait(5) == 0
        wait_for(
            lambda: colours(screenshot(env, "empty.png", window, tmp_path)) < with_item,
            10,
            "the item to go away",
        )
    finally:
        stop(tray)
        if panel is not None:
            stop_group(panel)


def _quit() -> tuple[int, str, object, int]:
    from dbus_fast import Variant

    from unipush_bridge.tray.model import QUIT_ID

    return (QUIT_ID, "clicked", Variant("s", ""), 0)

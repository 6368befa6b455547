"""A tray menu click does what clicking the notification does (issue 14 item 3: "choosing
one emits its click, with the same data as clicking the notification"), on real parts:
a real gateway and daemon on dunst, the tray as its own process, the menu's Event sent
over D-Bus as a tray host sends it, a BROWSER stand-in that records what it is given."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_fast import Variant

from tests.procs import wait_for
from tests.traystack import bus_env, call, item_prop, start_tray, stop, tray_name
from unipush_bridge.testing.servers import NotificationServer
from unipush_bridge.testing.stack import (
    DaemonProcess,
    GatewayProcess,
    InProcessListener,
    child_env,
)

MENU = "com.canonical.dbusmenu"
URL = "https://example.com/order/42"


@pytest.fixture
def root() -> Iterator[Path]:
    """Short enough for unix socket paths."""
    path = Path(tempfile.mkdtemp(prefix="unipush-tc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def menu_click(address: str, name: str, item_id: int) -> None:
    menu = item_prop(address, name, "Menu")
    call(address, name, menu, MENU, "Event", "isvu", (item_id, "clicked", Variant("s", ""), 0))


def menu_entries(address: str, name: str) -> dict[str, int]:
    """Recent notifications in the tray's menu: label -> dbusmenu id."""
    menu = item_prop(address, name, "Menu")
    _rev, (_root, _props, children) = call(
        address, name, menu, MENU, "GetLayout", "iias", (0, -1, [])
    )
    labels = {c.value[1]["label"].value: c.value[0] for c in children if "label" in c.value[1]}
    return {label: i for label, i in labels.items() if i >= 100}


@pytest.mark.unipush_server("dunst")
def test_tray_click_opens_the_open_url_as_the_notification_click_does(
    unipush_server: NotificationServer, root: Path
) -> None:
    """issue 14 item 2 (of the brief): a push with an open_url, shown; choosing it in
    the tray's menu opens that URL through the daemon's one click path (the history
    keeps the open_url), exactly as clicking the notification on dunst then does; a push
    without one gives the listener the click event clicking its notification gives."""
    opened = root / "opened.txt"
    browser = root / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    address = unipush_server.address
    env = child_env(address, unipush_server.env)
    gateway = GatewayProcess(root / "gw", env)
    daemon = DaemonProcess(root / "d", gateway.ws_url, {**env, "BROWSER": str(browser)})
    tray = None
    listener = None
    try:
        gateway.wait_ready()
        daemon.wait_ready()
        status, answer = gateway.call(
            "sendMessage",
            {
                "push_clientid": daemon.cid,
                "title": "Order",
                "content": "url",
                "payload": "o",
                "open_url": URL,
            },
        )
        assert status == 200 and answer["errCode"] == 0, answer
        shown = unipush_server.wait_one("Order", 10)
        payload = {"k": "tray"}
        status, answer = gateway.call(
            "sendMessage",
            {"push_clientid": daemon.cid, "title": "Plain", "content": "p", "payload": payload},
        )
        assert status == 200 and answer["errCode"] == 0, answer
        unipush_server.wait_one("Plain", 10)
        wait_for(lambda: len(daemon.call("history", {"limit": 5})["entries"]) == 2, 10, "history")

        tray = start_tray(daemon.socket, bus_env(address, unipush_server.env), root / "tray.log")
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        entries = wait_for(
            lambda: len(menu_entries(address, name)) == 2 and menu_entries(address, name),
            10,
            "the menu",
        )
        order = next(i for label, i in entries.items() if "Order" in label)
        menu_click(address, name, order)
        wait_for(lambda: opened.exists() and opened.read_text(), 10, "the browser")
        assert opened.read_text().splitlines() == [URL]
        history = daemon.call("history", {"limit": 5})["entries"]
        entry = next(e for e in history if e["title"] == "Order")
        assert entry["clicked"] and entry["open_url"] == URL

        # The notification itself, clicked: the same URL, the same way.
        unipush_server.click(shown)
        wait_for(lambda: len(opened.read_text().splitlines()) == 2, 10, "the browser again")
        assert opened.read_text().splitlines() == [URL, URL]

        # Without an open_url: the listener gets what a notification click gives it.
        listener = InProcessListener(daemon.socket)
        plain = next(i for label, i in entries.items() if "Plain" in label)
        menu_click(address, name, plain)
        event = listener.wait_for_event("click")
        assert event["data"]["payload"] == payload
        assert opened.read_text().splitlines() == [URL, URL]  # nothing more opened
    finally:
        if listener is not None:
            listener.close()
        if tray is not None:
            stop(tray)
        daemon.stop()
        gateway.stop()

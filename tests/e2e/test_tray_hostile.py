"""The tray against what can go wrong around it (review of the tray): hostile push
text, a daemon that is gone or frozen. Real daemon on dunst, the tray as its own
process, everything read over D-Bus as a tray host reads it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Variant

from tests.procs import wait_for
from tests.traystack import (
    WATCHER,
    bus_env,
    bus_names,
    call,
    item_prop,
    registered_items,
    require_tray_tools,
    start,
    start_tray,
    stop,
    tray_name,
)
from unipush_bridge.testing.plugin import Unipush

MENU = "com.canonical.dbusmenu"


def layout(address: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    """The menu's children as a host reads them: (id, {property: value})."""
    _rev, (_root, _props, children) = call(
        address, name, "/MenuBar", MENU, "GetLayout", "iias", (0, -1, [])
    )
    return [(c.value[0], {k: v.value for k, v in c.value[1].items()}) for c in children]


def entries(address: str, name: str) -> list[dict[str, Any]]:
    return [p for i, p in layout(address, name) if i >= 100]


@pytest.mark.unipush_server("dunst")
def test_a_nul_in_a_push_title_does_not_take_the_tray_off_the_bus(
    unipush: Unipush, tmp_path: Path
) -> None:
    """A push whose title holds NUL and C0 controls (valid JSON, "\\u0000"): the
    daemon shows it (its Notify call cleans it) and keeps it in the history as sent.
    The tray's menu label must still be a string D-Bus can carry: a NUL in a reply
    makes dbus-daemon drop the sender, and the item would be gone from the bus."""
    address = unipush.server.address
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        unipush.push(title="evil\x00nul\x1b[31m", content="x\u202eabc")
        unipush.notification()
        wait_for(lambda: unipush.daemon.call("history", {"limit": 1})["entries"], 10, "history")
        time.sleep(2)  # a poll or two
        assert tray_name(address) == name, "the tray's name went from the bus"
        (label,) = [e["label"] for e in entries(address, name)]
        assert "\x00" not in label and "\x1b" not in label and "\u202e" not in label
        assert "evil" in label and "nul" in label
        assert tray.poll() is None
    finally:
        stop(tray)


@pytest.mark.unipush_server("dunst")
def test_the_menu_says_daemon_not_running_and_greys_entries_while_offline(
    unipush: Unipush, tmp_path: Path
) -> None:
    """The history was listed; the daemon dies: the menu says "daemon not running"
    (as the tooltip does) and the stale entries are not offered as clickable."""
    address = unipush.server.address
    unipush.push(title="Before", content="b")
    unipush.notification("Before")
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: len(entries(address, name)) == 1, 10, "the entry listed")
        os.killpg(unipush.daemon.child.pid, signal.SIGKILL)
        wait_for(lambda: item_prop(address, name, "IconName") == "network-offline", 10, "offline")
        items = layout(address, name)
        labels = [p.get("label") for _, p in items]
        assert "daemon not running" in labels, labels
        assert all(p.get("enabled") is False for i, p in items if i >= 100), items
    finally:
        stop(tray)


@pytest.mark.unipush_server("dunst")
def test_a_frozen_daemon_reads_offline_and_sigterm_still_ends_the_tray(
    unipush: Unipush, tmp_path: Path
) -> None:
    """The daemon is stopped (SIGSTOP: its socket accepts, nothing answers, as a hung
    daemon): the tray shows offline within a few seconds instead of "connected"
    forever, and SIGTERM ends it at once instead of after the poll that never ends."""
    address = unipush.server.address
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    pid = unipush.daemon.child.pid
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        os.killpg(pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: item_prop(address, name, "IconName") == "network-offline", 15, "offline"
            )
            tray.send_signal(signal.SIGTERM)
            assert tray.wait(5) == 0
        finally:
            os.killpg(pid, signal.SIGCONT)
    finally:
        stop(tray)


@pytest.mark.unipush_server("dunst")
def test_an_unsafe_socket_dir_reads_offline_and_does_not_crash_the_tray(
    unipush: Unipush, tmp_path: Path
) -> None:
    """The daemon dies and its socket's directory becomes world-writable (anyone could
    put a fake daemon there): the client refuses to connect (UnsafePath); the tray
    must read offline and keep running, not die with a traceback."""
    address = unipush.server.address
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    folder = unipush.daemon.socket.parent
    mode = folder.stat().st_mode & 0o777
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        os.killpg(unipush.daemon.child.pid, signal.SIGKILL)
        folder.chmod(0o777)
        wait_for(lambda: item_prop(address, name, "IconName") == "network-offline", 10, "offline")
        time.sleep(2)  # more polls, each refused
        assert tray.poll() is None, (tmp_path / "t").read_text()[-2000:]
        assert item_prop(address, name, "IconName") == "network-offline"
    finally:
        folder.chmod(mode)
        stop(tray)


@pytest.mark.unipush_server("dunst")
def test_a_click_on_a_menu_read_before_a_new_push_acts_on_the_entry_it_showed(
    unipush: Unipush, tmp_path: Path
) -> None:
    """The host read the menu (B newest, then A); push C arrives and the tray polls
    before the user's click on B reaches it: the click must be B's, not whatever
    took B's place (C)."""
    address = unipush.server.address
    for title in ("A", "B"):
        unipush.push(title=title, content=title.lower(), payload={"which": title})
        unipush.notification(title)
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: len(entries(address, name)) == 2, 10, "A and B listed")
        shown = {p["label"]: i for i, p in layout(address, name) if i >= 100}
        b = next(i for label, i in shown.items() if "B" in label)
        unipush.push(title="C", content="c", payload={"which": "C"})
        unipush.notification("C")
        wait_for(lambda: len(entries(address, name)) == 3, 10, "C listed")
        call(address, name, "/MenuBar", MENU, "Event", "isvu", (b, "clicked", Variant("s", ""), 0))
        event = unipush.wait_for_event("click")  # held for the app, given on connect
        assert event["data"]["payload"] == {"which": "B"}, event
    finally:
        stop(tray)


def test_a_tray_that_loses_the_bus_while_starting_says_so_and_exits_1(tmp_path: Path) -> None:
    """CI caught the bus killed while the tray was still starting (its name taken, the
    watcher not yet asked): it exited 1 but said it could not *reach* the bus, which
    sends the user looking for a bus that was there. Made certain here: a watcher that
    owns its name and is stopped (SIGSTOP) holds the tray's start in its register call."""
    require_tray_tools()
    address = f"unix:path={tmp_path / 'bus'}"
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address={address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_for((tmp_path / "bus").exists, 10, "the bus socket")
        env = bus_env(address, {})
        watcher = start(["status-notifier-watcher"], env, tmp_path / "watcher.log")
        procs.append(watcher)
        wait_for(lambda: WATCHER in bus_names(address), 10, "the watcher on the bus")
        watcher.send_signal(signal.SIGSTOP)
        tray = start_tray(tmp_path / "no-daemon.sock", env, tmp_path / "tray.log")
        procs.append(tray)
        wait_for(lambda: tray_name(address), 10, "tray on the bus")
        bus.kill()
        bus.wait()
        assert tray.wait(15) == 1
        text = (tmp_path / "tray.log").read_text()
        assert "lost the session bus" in text, text
        assert "cannot reach" not in text, text
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
            stop(proc)
        if bus.poll() is None:
            bus.kill()
            bus.wait()


def test_a_tray_whose_session_bus_is_gone_exits_1_for_its_service_to_restart(
    tmp_path: Path,
) -> None:
    """The session bus dropped the tray (its dbus-daemon killed): it went on polling
    with no icon on any bus, for ever. It now exits 1, which the user unit restarts."""
    require_tray_tools()
    address = f"unix:path={tmp_path / 'bus'}"
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address={address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tray: subprocess.Popen[bytes] | None = None
    try:
        wait_for((tmp_path / "bus").exists, 10, "the bus socket")
        env = bus_env(address, {})
        tray = start_tray(tmp_path / "no-daemon.sock", env, tmp_path / "tray.log")
        wait_for(lambda: tray_name(address), 10, "tray on the bus")
        bus.kill()
        bus.wait()
        assert tray.wait(15) == 1
        assert "lost the session bus" in (tmp_path / "tray.log").read_text()
    finally:
        if tray is not None:
            stop(tray)
        if bus.poll() is None:
            bus.kill()
            bus.wait()


def test_a_tray_that_starts_while_the_watcher_is_not_yet_serving_registers_once_it_is(
    tmp_path: Path,
) -> None:
    """status-notifier-watcher owns its name a moment before it serves its object
    (RegisterStatusNotifierItem answers UnknownObject then). A tray that started in that
    moment (tray and tray host both start at login) was refused, and no NameOwnerChanged
    was coming for a name already owned: no icon until the host restarted. Made certain
    with a watcher (tests/e2e/late_watcher.py) that serves only when told to."""
    require_tray_tools()
    address = f"unix:path={tmp_path / 'bus'}"
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address={address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_for((tmp_path / "bus").exists, 10, "the bus socket")
        env = bus_env(address, {})
        script = Path(__file__).with_name("late_watcher.py")
        watcher = start([sys.executable, str(script)], env, tmp_path / "watcher.log")
        procs.append(watcher)
        wait_for(lambda: WATCHER in bus_names(address), 10, "the watcher's name on the bus")
        tray = start_tray(tmp_path / "no-daemon.sock", env, tmp_path / "tray.log")
        procs.append(tray)
        log = tmp_path / "tray.log"
        wait_for(lambda: "no StatusNotifierWatcher yet" in log.read_text(), 15, "refused")
        name = tray_name(address)
        assert name is not None
        watcher.send_signal(signal.SIGUSR1)  # serves its object now
        wait_for(lambda: name in registered_items(address), 15, "the tray registered")
    finally:
        for proc in reversed(procs):
            stop(proc)
        bus.kill()
        bus.wait()

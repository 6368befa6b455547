"""An idle tray must let the laptop sleep: it watches the daemon with a long-polled
status (one call in tray.app.WATCH_S seconds while nothing moves) instead of two calls
a second. Counted from the kernel: the tray's and the daemon's context switches
(/proc/PID/task/*/status) over a few idle seconds; and a push still reaches the
menu at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.procs import wait_for
from tests.traystack import bus_env, item_prop, start_tray, stop, tray_name
from unipush_bridge.testing.plugin import Unipush

IDLE_S = 6.0


def switches(pid: int) -> int:
    """Voluntary context switches (each a wait that ended) of every thread of ``pid``."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # a thread that ended
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches"):  # waits, not preemptions
                total += int(line.split()[1])
    return total


def daemon_pid(launcher: int) -> int:
    """``unipush-bridge run`` starts the daemon as its child: that one serves the socket."""
    for child in Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split():
        if b"runtime.daemon" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    return launcher


@pytest.mark.unipush_server("dunst")
def test_an_idle_tray_barely_wakes_itself_or_the_daemon(unipush: Unipush, tmp_path: Path) -> None:
    address = unipush.server.address
    tray = start_tray(unipush.daemon.socket, bus_env(address, unipush.server.env), tmp_path / "t")
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        daemon = daemon_pid(unipush.daemon.child.pid)
        time.sleep(1.5)  # the first watching call is out
        tray0, daemon0 = switches(tray.pid), switches(daemon)
        time.sleep(IDLE_S)
        tray_n, daemon_n = switches(tray.pid) - tray0, switches(daemon) - daemon0
        print(f"idle {IDLE_S} s: tray {tray_n}, daemon {daemon_n} switches")
        # Asking twice a second (12 polls of two calls in these 6 s) measured 18 and 19
        # in the tray, 42 and 43 in the daemon; watching, 1 or 2 and 17 or 18.
        assert tray_n <= 8, f"the idle tray woke {tray_n} times in {IDLE_S} s"
        assert daemon_n <= 30, f"the daemon woke {daemon_n} times in {IDLE_S} s"

        started = time.monotonic()
        unipush.push(title="wakes the menu", content="c")
        unipush.notification()
        wait_for(
            lambda: (
                item_prop(address, name, "IconName") == "mail-unread"
                and any(
                    "wakes the menu" in str(e.get("title", ""))
                    for e in unipush.daemon.call("history", {"limit": 1})["entries"]
                )
            ),
            10,
            "the push in the history",
        )
        assert time.monotonic() - started < 10
    finally:
        stop(tray)

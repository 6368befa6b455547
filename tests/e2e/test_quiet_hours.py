"""Quiet hours on dunst (issue 14 item 4): the toggle through the CLI, a push not
shown but in the history and counted, then one summary when quiet ends. On the
plugin's fixtures (issue 16 item 4)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.notifstack import NotifStack, require_tools
from tests.procs import DaemonProc, cli, post_json, wait_for
from unipush_bridge.testing.plugin import Unipush
from unipush_bridge.testing.stack import DaemonProcess


def quiet(daemon: DaemonProcess, mode: str) -> dict[str, object]:
    res = cli("quiet", mode, "--json", "--socket", str(daemon.socket))
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


@pytest.mark.unipush_server("dunst")
def test_quiet_on_holds_back_and_off_shows_one_summary(unipush: Unipush) -> None:
    """issue 14 item 4: quiet on, a push not shown but in history and counted, quiet
    off, one summary shown."""
    daemon = unipush.daemon
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    assert quiet(daemon, "on")["active"] is True

    for n in (1, 2):
        unipush.push(title=f"m{n}", content="c", payload={"n": n})
    wait_for(lambda: daemon.status()["quiet"]["unread"] == 2, 10, "two held back")
    assert daemon.status()["counters"]["quiet"] == 2
    time.sleep(0.3)
    assert unipush.notifications() == []  # nothing reached the screen
    res = cli("history", "--json", "--socket", str(daemon.socket))
    entries = json.loads(res.stdout)
    assert sorted(e["data"]["payload"]["n"] for e in entries) == [1, 2]
    assert {e["not_shown"] for e in entries} == {"quiet hours"}

    state = quiet(daemon, "off")
    assert (state["active"], state["unread"]) == (False, 0)
    summary = unipush.notification()
    assert summary.body == "2 notifications arrived during quiet hours"
    time.sleep(0.3)
    assert len(unipush.notifications()) == 1  # one summary, not the messages
    text = cli("quiet", "--socket", str(daemon.socket)).stdout
    assert text.strip() == "quiet hours: not quiet (off, no schedule), 0 held back"


def test_the_summary_waits_for_a_notification_server_when_quiet_ends_without_one(
    tmp_path: Path,
) -> None:
    """Quiet ended while no notification server was there (a daemon started at login
    before the desktop's server, dunst restarting): the summary failed, its count was
    already zeroed, and the user never heard of what quiet hours held back. It is shown
    when a server is back, with the count."""
    require_tools()
    with NotifStack() as stack:
        env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
        daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
        try:
            wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
            assert quiet(daemon, "on")["active"] is True
            http = "http" + daemon.status()["gateway"].removeprefix("ws").split("/ws")[0]
            for n in (1, 2, 3):
                status, answer = post_json(
                    f"{http}/api/__UNI__DESKTOP/sendMessage",
                    {"push_clientid": daemon.cid(), "title": f"m{n}", "content": "c"},
                )
                assert status == 200, answer
            wait_for(lambda: daemon.status()["quiet"]["unread"] == 3, 10, "three held back")

            stack.stop_server()
            wait_for(lambda: daemon.status()["notifications"] == "unavailable", 10, "no server")
            assert quiet(daemon, "off")["active"] is False
            time.sleep(0.5)
            stack.start_server()
            wait_for(lambda: daemon.status()["notifications"] == "available", 10, "server back")
            (summary,) = stack.wait_seen(1, timeout=10)
            assert summary["body"] == "3 notifications arrived during quiet hours"
            assert daemon.status()["quiet"]["unread"] == 0
        finally:
            daemon.stop()

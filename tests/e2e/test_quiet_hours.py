"""Quiet hours on dunst (issue 14 item 4): the toggle through the CLI, a push not
shown but in the history and counted, then one summary when quiet ends."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc, Proc, cli, wait_for


def quiet(daemon: DaemonProc, dunst: DunstStack, mode: str) -> dict[str, object]:
    res = cli("quiet", mode, "--json", "--socket", str(daemon.socket), env=dunst.env)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def test_quiet_on_holds_back_and_off_shows_one_summary(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc]
) -> None:
    """issue 14 item 4: quiet on, a push not shown but in history and counted, quiet
    off, one summary shown."""
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=dunst.env).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    assert quiet(daemon, dunst, "on")["active"] is True

    for n in (1, 2):
        status, answer = gateway.send(
            {"push_clientid": daemon.cid(), "title": f"m{n}", "content": "c", "payload": {"n": n}}
        )
        assert status == 200, answer
    wait_for(lambda: daemon.status()["quiet"]["unread"] == 2, 10, "two held back")
    assert daemon.status()["counters"]["quiet"] == 2
    time.sleep(0.3)
    assert dunst.seen() == []  # nothing reached the screen
    res = cli("history", "--json", "--socket", str(daemon.socket), env=dunst.env)
    entries = json.loads(res.stdout)
    assert sorted(e["data"]["payload"]["n"] for e in entries) == [1, 2]
    assert {e["not_shown"] for e in entries} == {"quiet hours"}

    state = quiet(daemon, dunst, "off")
    assert (state["active"], state["unread"]) == (False, 0)
    (summary,) = dunst.wait_seen(1)
    assert summary["body"] == "2 notifications arrived during quiet hours"
    time.sleep(0.3)
    assert len(dunst.seen()) == 1  # one summary, not the messages
    text = cli("quiet", "--socket", str(daemon.socket), env=dunst.env).stdout
    assert text.strip() == "quiet hours: not quiet (off, no schedule), 0 held back"

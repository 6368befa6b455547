"""Delayed notifications in a daemon whose wall clock is stepped while it runs
(libfaketime, tests/faketime.py), on dunst: a step is NTP or the user setting the
clock; monotonic time goes on as before."""

from __future__ import annotations

import time
from pathlib import Path

from tests.faketime import SteppedClock
from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc, Proc, cli, wait_for


def stepped_daemon(
    tmp_path: Path, procs: list[Proc], dunst: DunstStack, clock: SteppedClock
) -> DaemonProc:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env)
    procs.append(gateway.start())
    env = {**dunst.env, **clock.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=env)
    procs.append(daemon.start())
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return daemon


def test_a_step_back_while_nothing_was_scheduled_does_not_fire_the_next_delay_early(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc]
) -> None:
    """The clock went back an hour while the daemon had nothing scheduled (its timer
    was idle); a createPushMessage with a delay of 4 s made after that must wait 4 s,
    not be taken for one an hour overdue and shown at once."""
    clock = SteppedClock(tmp_path / "faketime")
    daemon = stepped_daemon(tmp_path, procs, dunst, clock)
    time.sleep(0.5)
    clock.step(-3600)
    time.sleep(0.5)
    asked = time.monotonic()
    res = cli("notify", "--socket", str(daemon.socket), "--content", "in 4 s", "--delay", "4")
    assert res.returncode == 0, res.stderr
    time.sleep(2.5)
    assert dunst.seen() == [], "shown early"
    (seen,) = dunst.wait_seen(1, timeout=10)
    assert seen["body"] == "in 4 s"
    assert time.monotonic() - asked >= 4 - 0.2

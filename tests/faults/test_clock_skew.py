"""A desktop whose clock is not the gateway's: real processes, the daemon's wall clock
set two hours ahead by libfaketime (tests/faketime.py), the gateway on the real one."""

from __future__ import annotations

import time
from pathlib import Path

from tests.faketime import SteppedClock
from tests.faults.conftest import Cleanup
from tests.faults.harness import NO_SERVER
from tests.procs import DaemonProc, GatewayProc, Listener


def test_a_held_push_waits_its_ttl_on_a_desktop_whose_clock_is_ahead(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    """A transparent push (nothing to show) with no app listening is held for the
    next app until its ttl ends. The end (hold_until) is on the gateway's clock and
    the daemon judged it by its own: two hours ahead, it let every held push go at
    once ("held pushes expired before an app listened") and the app that opened a
    few seconds later got nothing. The welcome now says the gateway's time."""
    gateway = GatewayProc(tmp_path / "gw", env=NO_SERVER)
    cleanup.proc(gateway)
    gateway.start()
    clock = SteppedClock(tmp_path / "faketime")
    clock.step(2 * 3600)
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env={**NO_SERVER, **clock.env})
    cleanup.proc(daemon)
    cid = daemon.start().cid()
    status, answer = gateway.send({"push_clientid": cid, "payload": {"n": 1}})
    assert (status, answer["errCode"]) == (200, 0), answer
    time.sleep(6.5)  # past the driver's 5 s look at what is due
    listener = Listener(daemon.socket, tmp_path / "listener.log", NO_SERVER)
    cleanup.proc(listener)
    listener.start()
    (event,) = listener.wait_events(1, timeout=10)
    assert event["data"]["payload"] == {"n": 1}
    assert not [e for e in daemon.logs() if e.get("event", "").startswith("held pushes expired")]

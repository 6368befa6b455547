"""A gateway that takes the hello and never answers it, though it answers pings: a
node whose store hangs, or a proxy whose backend is stuck. The daemon used to wait
for the welcome for ever ("connecting" in status, no retry, no push), since its
keepalive only looks for a pong. Now a ping answered 10 s or more after the hello,
with no welcome yet, ends the attempt, and the next connection (another node behind
the same address) works.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    FAST_PINGS,
    PING_INTERVAL,
    PING_TIMEOUT,
    ReconnectingListener,
    quick_status,
    start_daemon_fast,
)
from tests.faults.test_hostile_gateway import CID, FakeGateway, push, welcome
from tests.procs import DaemonProc, wait_for


def test_a_gateway_that_never_welcomes_is_left_and_tried_again(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    gw = FakeGateway([[], [welcome(), push(1, 0)]]).start()
    cleanup.add(gw.close)
    daemon = DaemonProc(tmp_path / "daemon", f"ws://127.0.0.1:{gw.port}", env=FAST_PINGS)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.out").start()
    cleanup.add(listener.stop)
    wait_for(lambda: len(gw.hellos) == 2, 10 * (PING_INTERVAL + PING_TIMEOUT), "a second hello")
    assert listener.wait_numbers({0}, timeout=10) == [0]
    wait_for(lambda: gw.acks(1) == [1], 10, "the ack of seq 1")
    st = quick_status(daemon)
    assert st is not None and st["cid"] == CID, st
    assert st["connection"]["state"] == "connected", st["connection"]
    assert "no welcome" in (st["connection"]["last_error"] or ""), st["connection"]

"""issue 10 item 19: one stuck listener must not delay the others.

A real gateway, a real daemon, a real reconnecting listener (it reads and
acknowledges), and a second listener that subscribes with acknowledgements and then
neither reads nor acknowledges. Pushes sent one by one (a batch each) must reach the
good listener at once; before, after four batches out the link waited for the stuck
one's hold timeout (30 s) before handing on anything more.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import NO_SERVER, exactly_once, listening_daemon, send_n
from tests.procs import GatewayProc, wait_for
from unipush_bridge.wire import local as wire

PUSHES = 12


def test_a_stuck_listener_does_not_delay_the_other(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    daemon, cid, good = listening_daemon(tmp_path, cleanup, gateway.ws_url, NO_SERVER)
    stuck = socket.socket(socket.AF_UNIX)
    cleanup.add(stuck.close)
    stuck.connect(str(daemon.socket))
    stuck.sendall(wire.encode_request(wire.Request(1, "onPushMessage", {"ack": True})))
    wait_for(lambda: daemon.status()["listeners"] == 2, 10, "two listeners")

    started = time.monotonic()
    for n in range(PUSHES):
        send_n(gateway, cid, n, "stuck", time.monotonic() + 10)
        # one at a time: each push is its own batch, as live traffic is
        wait_for(lambda n=n: n in good.numbers(), 5, f"push {n} at the good listener")
    elapsed = time.monotonic() - started
    exactly_once(good.numbers(), set(range(PUSHES)))
    assert elapsed < 10, f"{PUSHES} pushes took {elapsed:.1f} s with a stuck listener"
    assert daemon.alive()

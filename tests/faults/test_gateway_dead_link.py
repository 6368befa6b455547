"""The gateway finds a daemon's dead link by itself (link_timeout_s): a laptop that
slept without closing its socket, or a NAT that dropped the mapping, leaves a TCP
connection that nothing closes. Before, the gateway called such a cid online until TCP
gave up (up to 15 minutes): getClientStatusByCid said online, and sendMessage answered
successed_online for pushes that were not going anywhere (with ttl -1, lost). A real
gateway process and daemon, and a proxy between them that goes silent both ways."""

from __future__ import annotations

import time
from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import NO_SERVER, start_daemon_fast, wait_registered
from tests.faults.proxy import FaultProxy
from tests.procs import DaemonProc, GatewayProc, wait_for

LINK_TIMEOUT_S = 2.0


def status_of(gateway: GatewayProc, cid: str) -> str:
    code, body = gateway.send([cid], method="getClientStatusByCid")
    assert code == 200, body
    return str(body["data"][cid]["status"])


def test_a_silent_link_reads_offline_within_the_link_timeout(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    gateway = GatewayProc(
        tmp_path / "gw",
        env={**NO_SERVER, "UNIPUSH_BRIDGE_GATEWAY_LINK_TIMEOUT_S": str(LINK_TIMEOUT_S)},
    )
    cleanup.proc(gateway)
    gateway.start()
    proxy = FaultProxy(gateway.port).start()
    cleanup.add(proxy.close)
    # The daemon pings rarely, so only the gateway can notice; while the link is live
    # its pongs to the gateway's pings keep it up.
    env = {**NO_SERVER, "UNIPUSH_BRIDGE_PING_INTERVAL": "600"}
    daemon = cleanup.proc(DaemonProc(tmp_path / "daemon", proxy.url, env=env))
    assert isinstance(daemon, DaemonProc)
    start_daemon_fast(daemon)
    cid = wait_registered(daemon)

    time.sleep(LINK_TIMEOUT_S * 2.5)  # the gateway pinged a quiet, live link: it stays
    assert status_of(gateway, cid) == "online"

    proxy.stall()  # half-open: both sockets stay, nothing flows
    started = time.monotonic()
    wait_for(lambda: status_of(gateway, cid) == "offline", 15, "the cid to read offline")
    took = time.monotonic() - started
    # Silent for link_timeout_s, then half of it for the pong.
    assert took < LINK_TIMEOUT_S * 1.5 + 3, took
    code, body = gateway.send({"push_clientid": cid, "title": "t", "content": "c"})
    assert code == 200 and body["data"], body
    (statuses,) = body["data"].values()
    assert statuses[cid] == "successed_offline", statuses

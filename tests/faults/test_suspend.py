"""A suspended daemon (SIGSTOP for longer than ping_interval + ping_timeout) wakes up
with SIGCONT: it reconnects at once, without waiting out its backoff, and the messages
sent while it slept arrive exactly once.

The gateway does not ping, so it keeps the sleeping daemon "online" and its messages
wait unacknowledged in the old connection.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    PING_INTERVAL,
    PING_TIMEOUT,
    exactly_once,
    log_events,
    log_time,
    proxied_daemon,
    quick_status,
    send_n,
)
from tests.procs import GatewayProc, wait_for

#: How soon after SIGCONT the daemon must be registered again. Its backoff is primed
#: to wait 2-4 s before the suspend, so a reconnect within this is not a backoff.
RECONNECT_WITHIN_S = 1.5


def test_sigcont_after_a_long_stop_reconnects_at_once(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    proxy, daemon, cid, listener = proxied_daemon(tmp_path, cleanup, gateway)

    def connected() -> bool:
        st = quick_status(daemon)
        return bool(st and st["connection"]["state"] == "connected")

    # Three quick drops: the next failure would back off 2-4 s (attempt 4).
    for _ in range(3):
        wait_for(connected, 10, "the daemon to be connected")
        assert proxy.cut() == 1
        wait_for(lambda: not connected(), 5, "the daemon to see the cut")
    wait_for(connected, 10, "the daemon to be connected")
    backoffs = [e["attempt"] for e in log_events(daemon, "reconnecting")]
    assert backoffs[-1] >= 3, backoffs  # connections under 30 s do not reset the backoff

    deadline = time.monotonic() + 30
    for n in range(3):
        send_n(gateway, cid, n, "suspend", deadline)
    listener.wait_numbers({0, 1, 2}, timeout=10)

    stopped_at = time.time()
    daemon.send_signal(signal.SIGSTOP)
    cleanup.add(lambda: daemon.send_signal(signal.SIGCONT))
    during = [send_n(gateway, cid, n, "suspend", deadline) for n in range(3, 13)]
    assert {s.status for s in during} == {"successed_online"}  # the gateway cannot tell
    time.sleep(max(0.0, stopped_at + PING_INTERVAL + PING_TIMEOUT + 1.5 - time.time()))
    assert not set(listener.numbers()) & set(range(3, 13))

    resumed_at = time.time()
    daemon.send_signal(signal.SIGCONT)
    numbers = listener.wait_numbers(set(range(13)), timeout=15)
    wait_for(connected, 10, "the daemon to be connected")
    exactly_once(numbers, set(range(13)))
    assert listener.suppressed() == 0

    woken = [
        e
        for e in log_events(daemon, "reconnecting now")
        if e.get("reason") == "SIGCONT (resumed)" and log_time(e) >= resumed_at - 0.1
    ]
    assert woken, "the daemon did not log the SIGCONT wake-up"

    def registered() -> list[float]:
        return [
            log_time(e)
            for e in log_events(daemon, "connected to the gateway")
            if log_time(e) >= resumed_at
        ]

    wait_for(lambda: bool(registered()), 10, "a new registration after SIGCONT")
    took = registered()[0] - resumed_at
    assert took <= RECONNECT_WITHIN_S, f"reconnected {took:.2f} s after SIGCONT"
    print(f"registered again {took:.2f} s after SIGCONT (stopped {resumed_at - stopped_at:.1f} s)")

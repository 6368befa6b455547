"""SIGKILL the gateway again and again (restarted on the same port and data dir) while
2,000 messages stream: every message reaches the listener exactly once.

A sendMessage the gateway died on may or may not have been committed, so the sender
repeats it with the same request_id until one attempt is answered; the gateway's
request_id dedupe keeps that from storing it twice.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    FAST_PINGS,
    Sent,
    exactly_once,
    listening_daemon,
    log_events,
    quick_status,
    seeded_rng,
    send_n,
    settle,
)
from tests.procs import DaemonProc, GatewayProc

TOTAL = 2000
KILLS = 20
KILL_PHASE_S = 55.0
#: The daemon's backoff grows with every connection that did not last 30 s (by design:
#: a gateway that keeps dropping us gets no fast reconnect loop). Past this wait, the
#: test wakes the daemon with SIGCONT once the gateway is back, as a resume would.
LONGEST_BACKOFF_S = 1.0


def reconnect_soon(daemon: DaemonProc, timeout: float = 10.0) -> int:
    """Wait for the daemon to register again; wake it (SIGCONT) if its backoff would
    keep it away longer than LONGEST_BACKOFF_S. Returns how many wake-ups it took."""
    nudges = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = quick_status(daemon)
        if st is not None:
            conn = st["connection"]
            if conn["state"] == "connected":
                return nudges
            retry_at = conn["retry_at"]
            if conn["state"] == "backing_off" and retry_at - time.time() > LONGEST_BACKOFF_S:
                daemon.send_signal(signal.SIGCONT)
                nudges += 1
        time.sleep(0.05)
    raise TimeoutError(f"the daemon did not reconnect within {timeout:g} s")


def test_sigkill_the_gateway_while_messages_stream(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    rng = seeded_rng()
    daemon, cid, listener = listening_daemon(tmp_path, cleanup, gateway.ws_url, FAST_PINGS)

    sent: list[Sent] = []
    errors: list[BaseException] = []

    def sender() -> None:
        deadline = time.monotonic() + 60
        try:
            for n in range(TOTAL):
                sent.append(send_n(gateway, cid, n, "kg", deadline, timeout=2.0))
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    kills = nudges = 0
    try:
        end = time.monotonic() + KILL_PHASE_S
        while kills < KILLS and time.monotonic() < end:
            time.sleep(rng.uniform(0.0, 0.6))
            gateway.kill()
            kills += 1
            gateway.start()  # same port, same data dir; returns once /healthz answers
            nudges += reconnect_soon(daemon)
    finally:
        thread.join(70)
    assert not errors, errors
    assert kills >= KILLS
    assert len(sent) == TOTAL
    assert daemon.alive()

    expected = set(range(TOTAL))
    numbers = settle(listener, daemon, expected, timeout=35)
    time.sleep(0.5)  # a late duplicate would show up now
    numbers = listener.numbers()
    st = quick_status(daemon)
    assert st is not None
    retried = sum(s.attempts > 1 for s in sent)
    deduped = len(log_events(gateway, "dropped a repeated request_id"))
    print(
        f"{kills} gateway kills; {retried} sends repeated with their request_id, "
        f"{deduped} of them already stored before the kill; "
        f"{st['counters']['duplicates']} redeliveries dropped by the daemon; "
        f"{nudges} SIGCONT nudges past a long backoff"
    )
    exactly_once(numbers, expected)
    assert listener.suppressed() == 0  # the daemon never died: nothing to replay
    assert st["counters"]["received"] == TOTAL

"""SIGKILL the daemon again and again while 2,000 messages stream: every message reaches
the listener exactly once.

The listener is a process of its own that outlives every daemon run: it reconnects,
subscribes again and keeps one PushClient (and so one id filter) throughout, which is
what drops the pushes a restarted daemon hands on a second time.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    NO_SERVER,
    Sent,
    exactly_once,
    listening_daemon,
    quick_status,
    seeded_rng,
    send_n,
    settle,
    start_daemon_fast,
)
from tests.procs import GatewayProc, Proc, wait_for

TOTAL = 2000
KILLS = 20
#: Time the whole kill phase may take, whatever happens.
KILL_PHASE_S = 55.0


def test_sigkill_the_daemon_while_messages_stream(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    rng = seeded_rng()
    daemon, cid, listener = listening_daemon(tmp_path, cleanup, gateway.ws_url, NO_SERVER)

    sent: list[Sent] = []
    errors: list[BaseException] = []

    def sender() -> None:
        deadline = time.monotonic() + 60
        try:
            for n in range(TOTAL):
                sent.append(send_n(gateway, cid, n, "kd", deadline))
                time.sleep(0.006)  # spread the stream over the kill phase
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    kills = 0
    sent_at_kill: list[int] = []
    try:
        end = time.monotonic() + KILL_PHASE_S
        while kills < KILLS and time.monotonic() < end:
            time.sleep(rng.uniform(0.0, 0.6))  # a moment after the socket is up
            daemon.kill()
            kills += 1
            sent_at_kill.append(len(sent))
            if rng.random() < 0.2:  # now and then, a moment during start-up
                Proc.start(daemon)
                time.sleep(rng.uniform(0.0, 0.6))
                daemon.kill()
                kills += 1
                sent_at_kill.append(len(sent))
            start_daemon_fast(daemon)
    finally:
        thread.join(70)
    assert not errors, errors
    assert kills >= KILLS
    assert len(sent) == TOTAL

    expected = set(range(TOTAL))
    settle(listener, daemon, expected, timeout=35)
    time.sleep(0.5)  # a late duplicate would show up now
    numbers = listener.numbers()
    print(
        f"{kills} kills (messages sent by then: {sent_at_kill}); "
        f"{listener.subscriptions()} subscriptions; "
        f"{listener.suppressed()} replayed pushes dropped by the client's id filter"
    )
    dups = sorted(n for n, c in Counter(numbers).items() if c > 1)
    assert not dups, f"{len(dups)} messages reached the listener twice: {dups[:20]}"
    exactly_once(numbers, expected)


def test_sigkill_while_a_listener_lags_loses_nothing(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    """A listener that reads slowly (here: stopped) has events queued in the daemon;
    a daemon killed then must hand them on again after its restart."""
    total = 1500
    daemon, cid, listener = listening_daemon(tmp_path, cleanup, gateway.ws_url, NO_SERVER)
    assert listener.proc is not None
    listener.proc.send_signal(signal.SIGSTOP)
    stopped = listener.proc
    cleanup.add(lambda: stopped.send_signal(signal.SIGCONT) if stopped.poll() is None else None)
    deadline = time.monotonic() + 60
    for n in range(total):
        send_n(gateway, cid, n, "lag", deadline)
    # The daemon has recorded and acknowledged every message, and handed it to the
    # listener, which has read almost none: they must not count as delivered yet.
    wait_for(
        lambda: (st := quick_status(daemon)) and st["counters"]["received"] == total,
        30,
        "every message recorded",
    )
    assert quick_status(daemon)["backlog"] > 0  # not marked done while unread
    daemon.kill()
    start_daemon_fast(daemon)
    listener.proc.send_signal(signal.SIGCONT)
    listener.wait_subscribed(2)
    numbers = settle(listener, daemon, set(range(total)), timeout=30)
    print(f"{len(set(numbers))} of {total} reached the listener")
    exactly_once(numbers, set(range(total)))

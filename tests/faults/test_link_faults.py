"""Real link faults between a daemon and the gateway, through a TCP proxy the test owns:
a cut while messages stream, a stalled (half-open) link, connections that vanish.

Every message must reach the listener exactly once. The daemon never crashes here, so
the client library's replay filter must have nothing to drop either.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    FAST_PINGS,
    PING_INTERVAL,
    PING_TIMEOUT,
    ReconnectingListener,
    Sent,
    exactly_once,
    log_events,
    log_time,
    proxied_daemon,
    quick_status,
    send_n,
    start_daemon_fast,
    wait_registered,
)
from tests.faults.proxy import FaultProxy
from tests.procs import DaemonProc, GatewayProc, cli, wait_for

#: Slack on top of ping_interval + ping_timeout for noticing a dead link (scheduling,
#: a loaded CI machine).
DETECT_SLACK_S = 1.5


@dataclass
class Rig:
    gateway: GatewayProc
    proxy: FaultProxy
    daemon: DaemonProc
    listener: ReconnectingListener
    cid: str
    sent: list[Sent] = field(default_factory=list)

    def send(self, numbers: range, run: str, pause: float = 0.0) -> None:
        deadline = time.monotonic() + 60
        for n in numbers:
            self.sent.append(send_n(self.gateway, self.cid, n, run, deadline))
            if pause:
                time.sleep(pause)

    def connected(self) -> dict[str, Any] | None:
        st = quick_status(self.daemon)
        return st if st and st["connection"]["state"] == "connected" else None


@pytest.fixture
def rig(tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc) -> Iterator[Rig]:
    proxy, daemon, cid, listener = proxied_daemon(tmp_path, cleanup, gateway)
    wait_for(lambda: (st := quick_status(daemon)) and st["listeners"] == 1, 10, "the listener")
    yield Rig(gateway, proxy, daemon, listener, cid)


def test_cut_while_messages_stream(rig: Rig) -> None:
    total = 300
    rng = random.Random()
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            rig.send(range(total), "cut", pause=0.008)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    cuts = 0
    try:
        while cuts < 3:
            # Connected by its own account and through the proxy: status can still say
            # connected for a moment after the last cut, while the link is in backoff.
            wait_for(
                lambda: rig.connected() and rig.proxy.connections() > 0,
                10,
                "the daemon to be connected",
            )
            time.sleep(rng.uniform(0.2, 0.6))
            cuts += rig.proxy.cut() > 0
    finally:
        thread.join(60)
    assert not errors, errors
    assert cuts == 3
    numbers = rig.listener.wait_numbers(set(range(total)), timeout=30)
    exactly_once(numbers, set(range(total)))
    assert rig.listener.suppressed() == 0  # no daemon crash: nothing replayed
    st = wait_for(rig.connected, 10, "the daemon to reconnect")
    assert st["counters"]["received"] == total
    assert len(log_events(rig.daemon, "gateway link down")) >= 3
    print(
        f"cut {cuts} times; {st['counters']['duplicates']} redeliveries dropped by the daemon; "
        f"answers: {sorted({s.status for s in rig.sent})}"
    )


def test_stalled_link_is_found_by_the_ping_and_nothing_is_lost(rig: Rig) -> None:
    rig.send(range(5), "stall")
    rig.listener.wait_numbers(set(range(5)), timeout=10)

    stalled_at = time.time()
    rig.proxy.stall()
    # The gateway does not ping: it still thinks the daemon is online.
    rig.send(range(5, 15), "stall")
    assert {s.status for s in rig.sent[5:]} == {"successed_online"}

    aborts = wait_for(
        lambda: log_events(rig.daemon, "no pong from the gateway; aborting the link"),
        PING_INTERVAL + PING_TIMEOUT + DETECT_SLACK_S + 2,
        "the daemon to find the dead link",
    )
    detected_after = log_time(aborts[0]) - stalled_at
    assert PING_TIMEOUT - 0.2 <= detected_after <= PING_INTERVAL + PING_TIMEOUT + DETECT_SLACK_S
    wait_for(
        lambda: (
            (st := quick_status(rig.daemon))
            and st["connection"]["state"] in ("connecting", "backing_off")
            and "pong" in (st["connection"]["last_error"] or "")
        ),
        3,
        "status to show the dead link",
    )
    shown = cli("status", "--json", "--socket", str(rig.daemon.socket), env=FAST_PINGS)
    assert shown.returncode == 0, shown.stderr
    assert "pong" in json.loads(shown.stdout)["connection"]["last_error"]
    assert not set(rig.listener.numbers()) & set(range(5, 15))  # nothing got through

    time.sleep(max(0.0, stalled_at + 3.5 - time.time()))
    rig.proxy.restore()
    numbers = rig.listener.wait_numbers(set(range(15)), timeout=20)
    exactly_once(numbers, set(range(15)))
    assert rig.listener.suppressed() == 0
    wait_for(rig.connected, 10, "the daemon to reconnect")
    print(f"dead link found {detected_after:.2f} s after the stall")


def test_blackholed_reconnects_back_off_then_drain(rig: Rig) -> None:
    rig.proxy.blackhole()
    rig.proxy.cut()  # the live link goes; every new one vanishes into the blackhole
    wait_for(lambda: not rig.connected(), 5, "the daemon to see the cut")
    rig.send(range(10), "blackhole")

    seen: list[tuple[str, int, str | None]] = []

    def observe() -> dict[str, Any] | None:
        st = quick_status(rig.daemon)
        if st is not None:
            c = st["connection"]
            seen.append((c["state"], c["attempts"], c["last_error"]))
        return st

    # Opening a connection times out after 10 s: then the daemon backs off.
    timed_out = wait_for(
        lambda: (
            (st := observe())
            and st["connection"]["state"] == "backing_off"
            and "TimeoutError" in (st["connection"]["last_error"] or "")
            and st
        ),
        25,
        "a handshake timeout, then backing_off",
    )
    first = timed_out["connection"]["attempts"]
    assert first >= 2  # the cut, then the timeout
    # From now on connections are reset at once: the attempts count up quickly.
    rig.proxy.reject()
    shown = cli("status", "--json", "--socket", str(rig.daemon.socket), env=FAST_PINGS)
    assert shown.returncode == 0, shown.stderr
    connection = json.loads(shown.stdout)["connection"]
    assert connection["state"] in ("connecting", "backing_off")
    assert connection["attempts"] >= first
    assert connection["last_error"]

    wait_for(
        lambda: (st := observe()) and st["connection"]["attempts"] >= first + 2,
        15,
        "two more attempts",
    )
    attempts = [a for _, a, _ in seen]
    assert attempts == sorted(attempts), "attempts never go down while the link is out"
    assert {s for s, _, _ in seen} <= {"connecting", "backing_off"}
    assert not rig.listener.numbers()

    rig.proxy.restore()
    numbers = rig.listener.wait_numbers(set(range(10)), timeout=20)
    exactly_once(numbers, set(range(10)))
    assert rig.listener.suppressed() == 0
    st = wait_for(rig.connected, 10, "the daemon to reconnect")
    assert st["connection"]["attempts"] == 0
    print(f"attempts observed: {sorted(set(attempts))}")


def test_a_gateway_shutdown_is_reported_with_its_close_code(
    tmp_path: Path, cleanup: Cleanup, gateway: GatewayProc
) -> None:
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=FAST_PINGS)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_registered(daemon)
    assert gateway.stop() == 0  # SIGTERM: the gateway closes every link with 1001
    st = wait_for(
        lambda: (st := quick_status(daemon)) and st["connection"]["last_error"] and st,
        10,
        "the daemon to notice",
    )
    assert daemon.alive()
    assert not log_events(daemon, "unexpected error on the gateway link")
    assert st["connection"]["last_error"]
    # The first reason is the close; by the time status is read, a reconnect attempt
    # may already have met the stopped gateway ("connection refused") and replaced it.
    (first, *_) = log_events(daemon, "gateway link down")
    assert first["reason"] == "closed by the gateway (1001: gateway shutting down)"

"""A gateway node on Redis whose wall clock is stepped after it started (NTP setting a
node that booted with a wrong clock, a VM restored from a snapshot): real processes,
the node's clock moved by libfaketime (tests/faketime.py), Redis and the daemon on the
real one. Messages' expiries are Redis' clock's, so the step must change none."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.faketime import SteppedClock
from tests.faults.conftest import Cleanup
from tests.faults.harness import NO_SERVER
from tests.procs import DaemonProc, GatewayProc, Listener
from tests.redisstack import RedisServer, redis_server

__all__ = ["redis_server"]


def test_a_node_whose_clock_steps_forward_still_sends_what_has_time_left(
    tmp_path: Path, cleanup: Cleanup, redis_server: RedisServer
) -> None:
    """The node measured Redis' clock against its own wall clock once, at start: a
    step of two hours forward made it read every message stored with the default
    ttl (1 h) as expired, so a daemon that came back a moment later got nothing,
    although the answer had been successed_offline."""
    clock = SteppedClock(tmp_path / "faketime")
    env = {**NO_SERVER, **clock.env, "UNIPUSH_BRIDGE_GATEWAY_STORE": redis_server.url}
    gateway = GatewayProc(tmp_path / "gw", env=env)
    cleanup.proc(gateway)
    gateway.start()
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=NO_SERVER)
    cleanup.proc(daemon)
    cid = daemon.start().cid()
    assert daemon.stop(signal.SIGTERM) == 0

    status, answer = gateway.send(
        {"push_clientid": cid, "title": "T", "content": "C", "payload": {"n": 1}}
    )
    assert (status, answer["errCode"]) == (200, 0), answer
    ((task,),) = [list(answer["data"].values())]
    assert task == {cid: "successed_offline"}

    clock.step(2 * 3600)
    daemon.start()
    listener = Listener(daemon.socket, tmp_path / "listener.log", NO_SERVER)
    cleanup.proc(listener)
    listener.start()
    (event,) = listener.wait_events(1, timeout=10)
    assert event["data"]["payload"] == {"n": 1}

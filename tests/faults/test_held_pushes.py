"""Pushes held while no app listens, in a real daemon process against a gateway double
that behaves as the real one does (resends from the cursor on every connection):

- a backlog of held pushes larger than a listener's 4 MiB output cap reaches a new
  listener that reads, every push once and in order, without the daemon cutting it
  (before, all of them were written into its connection at once: it was cut for its
  own backlog, they went back to held, and the next subscription was cut again);
- a gateway that floods pushes while nobody listens does not grow the held pushes past
  ``max_held_mib``: the daemon stops recording (the gateway keeps them), and takes
  them once a listener has taken the held ones; nothing is lost or shown twice, and
  no ack covers a push the daemon did not record;
- a listener that subscribes while a stuck one has the first round gets the held
  pushes at once, not after the stuck one's listener_timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    NO_SERVER,
    ReconnectingListener,
    exactly_once,
    log_events,
    quick_status,
    start_daemon_fast,
)
from tests.faults.test_hostile_gateway import CID, welcome
from tests.faults.test_hostile_gateway_flood import FloodingGateway
from tests.procs import DaemonProc, wait_for
from unipush_bridge.wire import local as wire

FELL_BEHIND = "a local API client fell behind; disconnecting it"


def held_push(seq: int, content: int) -> str:
    """Push ``seq`` (``n`` = seq - 1) with an id of its own that every resend repeats,
    held for the next listener (no phone maker's channel: ``offline`` "hold")."""
    body = {
        "title": "held",
        "content": "x" * content,
        "payload": {"n": seq - 1},
        "offline": "hold",
    }
    return json.dumps({"type": "push", "seq": seq, "id": f"{seq:032x}", "message": body})


class CursorGateway(FloodingGateway):
    """Sends pushes 1..``total`` after the cursor on every connection, as fast as the
    daemon's TCP window takes them, once released (FloodingGateway's count of what it
    sent and when). The cursor is what the real gateway resumes from: the highest of
    the daemon's acks and its hellos' ``acked`` (a hello speaks for frames recorded
    after the old link died, whose acks were lost)."""

    def __init__(self, total: int, content: int) -> None:
        super().__init__()
        self.total = total
        self.content = content

    @property
    def cursor(self) -> int:
        acks = [int(f["seq"]) for frames in self.received for f in frames if f.get("type") == "ack"]
        hellos = [int(h.get("acked") or 0) for h in self.hellos]
        return max([0, *acks, *hellos])

    async def _handle(self, ws: ServerConnection) -> None:
        index = len(self.hellos)
        self.hellos.append(json.loads(await ws.recv()))
        self.received.append([])
        reading = asyncio.get_running_loop().create_task(self._read(ws, index))
        try:
            await ws.send(welcome(acked=self.cursor))
            await self._go.wait()
            for seq in range(self.cursor + 1, self.total + 1):
                await ws.send(held_push(seq, self.content))
                self.sent += 1
                self.last_sent = time.monotonic()
            await reading
        except ConnectionClosed:
            pass


def held_for_listener(daemon: DaemonProc) -> int:
    st = quick_status(daemon)
    return -1 if st is None else int(st["held_for_listener"])


def in_order(numbers: list[int]) -> None:
    firsts = list(dict.fromkeys(numbers))
    assert firsts == sorted(firsts), f"out of order: {firsts[:50]}"


def test_a_held_backlog_past_the_output_cap_reaches_a_listener_that_reads(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    """40 held pushes of 200 KB (8 MB, twice a connection's 4 MiB output cap)."""
    total, content = 40, 200_000
    gw = CursorGateway(total, content).start()
    cleanup.add(gw.close)
    gw.release()
    daemon = DaemonProc(tmp_path / "daemon", f"ws://127.0.0.1:{gw.port}", env=NO_SERVER)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_for(lambda: held_for_listener(daemon) == total, 30, "every push held")

    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.jsonl").start()
    cleanup.add(listener.stop)
    numbers = listener.wait_numbers(set(range(total)), 60)
    exactly_once(numbers, set(range(total)))
    in_order(numbers)
    assert listener.suppressed() == 0, "events were handed to the listener twice"
    assert not log_events(daemon, FELL_BEHIND), "the listener was cut for its own backlog"
    assert listener.subscriptions() == 1
    wait_for(lambda: held_for_listener(daemon) == 0, 10, "nothing held any more")


def test_a_gateway_flooding_while_nobody_listens_is_pushed_back_at_the_held_bound(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    """1,000 pushes of 40 KB (40 MB) against a bound of 2 MiB, with pings fast enough
    that the paused link is dropped (and must come back) while it waits."""
    total, content, bound_mib = 1000, 40_000, 2
    gw = CursorGateway(total, content).start()
    cleanup.add(gw.close)
    daemon = DaemonProc(
        tmp_path / "daemon",
        f"ws://127.0.0.1:{gw.port}",
        env={
            **NO_SERVER,
            "UNIPUSH_BRIDGE_MAX_HELD_MIB": str(bound_mib),
            "UNIPUSH_BRIDGE_PING_INTERVAL": "1",
            "UNIPUSH_BRIDGE_PING_TIMEOUT": "1",
        },
    )
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_for(lambda: (st := quick_status(daemon)) and st["cid"] == CID, 15, "registration")

    gw.release()
    wait_for(
        lambda: gw.sent >= total or time.monotonic() - gw.last_sent > 3.0,
        60,
        "the flood to be sent or pushed back",
    )
    time.sleep(3.0)  # pings, link drops and reconnects while paused: no more held
    held = held_for_listener(daemon)
    # The bound, plus the one batch (at most 512 KiB of frames) recorded when it was hit.
    most = (bound_mib * 2**20 + 512 * 1024) // content + 1
    assert 0 < held <= most, f"{held} pushes held (at most {most} fit the bound)"
    assert gw.cursor <= held, f"the gateway was told {gw.cursor} were kept; {held} are held"
    assert log_events(daemon, "held pushes reached max_held_mib; not taking more for now")

    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.jsonl").start()
    cleanup.add(listener.stop)
    numbers = listener.wait_numbers(set(range(total)), 120)
    exactly_once(numbers, set(range(total)))
    in_order(numbers)
    assert listener.suppressed() == 0, "events were handed to the listener twice"
    wait_for(lambda: gw.cursor == total, 30, f"the ack of seq {total}")
    assert not log_events(daemon, FELL_BEHIND)
    # The paused link was dropped (no pong read) and came back once there was room.
    assert len(gw.hellos) >= 2, gw.hellos
    assert log_events(daemon, "held pushes are under max_held_mib again; taking pushes")


def test_a_listener_that_comes_after_a_stuck_one_gets_the_held_pushes_at_once(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    """A stuck listener (subscribed with acks, reads nothing) takes the first round of
    12 held pushes of 200 KB; a second one that subscribes then got nothing until the
    stuck one's listener_timeout (30 s) cut it, round after round of its own wait."""
    total, content = 12, 200_000
    gw = CursorGateway(total, content).start()
    cleanup.add(gw.close)
    gw.release()
    daemon = DaemonProc(
        tmp_path / "daemon",
        f"ws://127.0.0.1:{gw.port}",
        env={**NO_SERVER, "UNIPUSH_BRIDGE_LISTENER_TIMEOUT": "30"},
    )
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_for(lambda: held_for_listener(daemon) == total, 30, "every push held")

    stuck = socket.socket(socket.AF_UNIX)
    cleanup.add(stuck.close)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(daemon.socket))
    stuck.sendall(wire.encode_request(wire.Request(1, "onPushMessage", {"ack": True})))
    wait_for(lambda: (st := quick_status(daemon)) and st["listeners"] == 1, 10, "the stuck one")

    started = time.monotonic()
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.jsonl").start()
    cleanup.add(listener.stop)
    numbers = listener.wait_numbers(set(range(total)), 60)
    elapsed = time.monotonic() - started
    exactly_once(numbers, set(range(total)))
    in_order(numbers)
    assert elapsed < 15, f"the held pushes took {elapsed:.1f} s behind a stuck listener"
    assert listener.subscriptions() == 1

"""A gateway that sends pushes faster than the daemon can hand them on: the only
listener reads every event and acknowledges none, so the daemon's link waits on its
holds while the gateway keeps sending large frames. What the daemon reads ahead must
stay bounded in bytes (TCP pushes the gateway back), and once a listener that
acknowledges comes, every push arrives exactly once and is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    NO_SERVER,
    exactly_once,
    log_events,
    quick_status,
    start_daemon_fast,
)
from tests.faults.test_hostile_gateway import CID, FakeGateway, push, welcome
from tests.procs import DaemonProc, wait_for
from unipush_bridge.wire import local as wire

PUSHES = 500
#: Content per push: 500 of them are ~100 MB, far more than any read-ahead should hold.
CONTENT = 200_000
#: What the daemon may grow by while the gateway floods it (its own parts: the frames
#: read ahead, the batches out with the listener, their parsed copies).
MAX_GROWTH_MIB = 60
#: No frame out for this long: the daemon has stopped reading (the gateway is pushed back).
PUSHED_BACK_S = 3.0


class FloodingGateway(FakeGateway):
    """Sends the welcome, then, once released, PUSHES large pushes as fast as the
    daemon's TCP window lets it, counting them and when the last one went out."""

    def __init__(self) -> None:
        super().__init__([[welcome()]])
        self.sent = 0
        self.last_sent = time.monotonic()
        self._go = asyncio.Event()

    def release(self) -> None:
        """Start the flood (from the test's thread)."""
        self._loop.call_soon_threadsafe(self._go.set)

    async def _handle(self, ws: ServerConnection) -> None:
        index = len(self.hellos)
        self.hellos.append(json.loads(await ws.recv()))
        self.received.append([])
        reading = asyncio.get_running_loop().create_task(self._read(ws, index))
        try:
            await ws.send(welcome())
            await self._go.wait()
            if index == 0:
                for n in range(PUSHES):
                    await ws.send(push(n + 1, n, content="x" * CONTENT))
                    self.sent += 1
                    self.last_sent = time.monotonic()
            await reading
        except ConnectionClosed:
            pass


def vm(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in MiB (VmRSS now, VmHWM the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


class Hoarder:
    """A listener that subscribes with acknowledgements and reads every event off its
    socket (so it is never cut for falling behind), acknowledging none until told to;
    it counts every push it gets."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.sock.sendall(wire.encode_request(wire.Request(1, "onPushMessage", {"ack": True})))
        self.numbers: list[int] = []
        self.acking = threading.Event()
        self._unacked: list[str] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(1 << 20):
                *lines, buf = (buf + chunk).split(b"\n")
                for line in lines:
                    msg = wire.parse_daemon_line(line)
                    if isinstance(msg, wire.Event) and msg.push_id is not None:
                        self.numbers.append(msg.data["data"]["payload"]["n"])
                        self._unacked.append(msg.push_id)
                if self.acking.is_set() and self._unacked:
                    self.sock.sendall(wire.encode_ack(self._unacked))
                    self._unacked = []

    def ack_all(self) -> None:
        """Acknowledge from now on, what was read so far with the next event or now."""
        self.acking.set()
        with contextlib.suppress(OSError):
            self.sock.sendall(wire.encode_ack(list(self._unacked)))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def test_a_flooding_gateway_is_pushed_back_and_nothing_is_lost(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    """Before, the link read up to 2,000 frames ahead into its own queue and 2,000
    more into the websocket library's (~1 GiB of 256 KiB frames), and cut batches of
    500 frames whatever their size: this flood of ~100 MB was read in whole."""
    gw = FloodingGateway().start()
    cleanup.add(gw.close)
    daemon = DaemonProc(
        tmp_path / "daemon",
        f"ws://127.0.0.1:{gw.port}",
        env={**NO_SERVER, "UNIPUSH_BRIDGE_LISTENER_TIMEOUT": "120"},
    )
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_for(lambda: (st := quick_status(daemon)) and st["cid"] == CID, 15, "registration")
    hoarder = Hoarder(daemon.socket)
    cleanup.add(hoarder.close)
    wait_for(lambda: (st := quick_status(daemon)) and st["listeners"] == 1, 10, "the hoarder")
    before = vm(daemon.pid, "VmRSS")

    gw.release()
    wait_for(
        lambda: gw.sent == PUSHES or time.monotonic() - gw.last_sent > PUSHED_BACK_S,
        60,
        "the flood to be sent or pushed back",
    )
    growth = vm(daemon.pid, "VmHWM") - before
    assert growth < MAX_GROWTH_MIB, (
        f"the daemon grew by {growth} MiB reading {gw.sent} pushes of {CONTENT} bytes ahead"
    )
    assert gw.sent < PUSHES, "the gateway was never pushed back"

    # It acknowledges now: every push reaches it, once, in batches small enough that
    # a listener which reads is never cut (before, one batch was up to 500 frames).
    hoarder.ack_all()
    wait_for(lambda: len(set(hoarder.numbers)) == PUSHES, 60, "every push at the listener")
    exactly_once(hoarder.numbers, set(range(PUSHES)))
    wait_for(lambda: PUSHES in gw.acks(0), 30, f"the ack of seq {PUSHES}")
    assert len(gw.hellos) == 1, "the link dropped under the flood"
    assert not log_events(daemon, "a local API client fell behind; disconnecting it")

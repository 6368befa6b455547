"""A hostile gateway: a websockets server in the test that speaks protocol v1 but mixes
malformed frames in with valid pushes. The daemon must not crash, must refuse and log
each bad frame, must keep the link, must hand every valid push on exactly once, and
must send only cumulative acks that never pass the highest valid seq it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
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
from tests.procs import DaemonProc, wait_for

CID = secrets.token_hex(16)
Frame = str | bytes


def push(seq: int, n: int | None = None, msg_id: str | None = None, **message: Any) -> str:
    body: dict[str, Any] = {"title": "hostile", "content": f"n={n}", **message}
    if n is not None:
        body["payload"] = {"n": n}
    return json.dumps(
        {"type": "push", "seq": seq, "id": msg_id or secrets.token_hex(16), "message": body}
    )


def welcome(acked: int = 0, cid: str = CID) -> str:
    return json.dumps({"type": "welcome", "v": 1, "cid": cid, "acked": acked})


@dataclass
class Script:
    """What the fake gateway sends on its first connection, and what should come of it."""

    frames: list[Frame] = field(default_factory=list)
    refused: int = 0
    numbers: set[int] = field(default_factory=set)
    top_seq: int = 0

    def bad(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.refused += 1

    def good(self, seq: int, n: int, msg_id: str | None = None, **message: Any) -> str:
        msg_id = msg_id or secrets.token_hex(16)
        self.frames.append(push(seq, n, msg_id, **message))
        self.numbers.add(n)
        self.top_seq = max(self.top_seq, seq)
        return msg_id


def first_connection() -> Script:
    s = Script()
    s.bad(push(1, 99))  # a push before the welcome
    s.bad(welcome(cid="NOT-A-CID"))
    s.frames.append(welcome())
    first = s.good(1, 0)
    s.bad("not json {")
    s.bad(b"\x00\x01 a binary frame")
    s.good(2, 1)
    s.bad(json.dumps({"type": "bogus", "seq": 3}))  # unknown type
    s.bad(json.dumps({"seq": 3, "id": "no-type"}))
    s.bad(json.dumps({"type": "push", "seq": 3}))  # no id, no message
    # A push with a huge seq but no content: refused, so no ack may ever reach 1000.
    s.bad(json.dumps({"type": "push", "seq": 1000, "id": "x", "message": {"title": "t"}}))
    s.bad(push(0, 98))  # seq must be >= 1
    s.bad(push(4, 97, msg_id="i" * 65))  # id longer than 64
    s.bad(push(4, 96, title=123))  # title not a string
    s.bad(json.dumps({"type": "push", "seq": 4, "id": "m", "message": "not an object"}))
    third = s.good(5, 2)
    # Out of order: seq 3 after seq 5, with an id never seen. Not a redelivery, so it is
    # handed on (dropping it would lose it: a later cumulative ack covers it anyway).
    s.good(3, 3)
    s.frames.append(push(5, 2, msg_id=third))  # a repeated id: dropped, not handed on twice
    s.frames.append(push(6, 0, msg_id=first))  # a repeated id with a later seq: dropped too
    s.top_seq = 6
    s.bad(welcome())  # a second welcome on a registered session
    s.bad("[1, 2]")
    s.bad("null")
    s.bad("[" * 100_000 + "]" * 100_000)  # nesting too deep for the JSON parser
    s.bad('{"type": "push", "seq": ' + "9" * 5000 + ', "id": "big"}')  # integer too long
    # A non-fatal error frame is valid protocol: logged as a gateway error, not refused.
    s.frames.append(json.dumps({"type": "error", "code": "teapot", "message": "short and stout"}))
    s.good(10, 4, sound="ding", badge=3, extra={"nested": [1, 2]})
    s.good(11, 5)
    s.good(12, 6, content="x" * 200_000)  # large but under the 256 KiB frame limit
    return s


class FakeGateway:
    """Runs on its own loop in a thread; records every hello and every frame it gets."""

    def __init__(self, scripts: list[list[Frame]]) -> None:
        self.scripts = scripts
        self._later: dict[int, list[Frame]] = {}
        self.hellos: list[dict[str, Any]] = []
        self.received: list[list[dict[str, Any]]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._release: list[asyncio.Event] = []
        self._ready = threading.Event()
        self._serving: Future[None] | None = None

    def start(self) -> FakeGateway:
        self._thread.start()
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        assert self._ready.wait(5)
        return self

    def close(self) -> None:
        """Close every connection (1001), stop serving, end the thread."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._serving is not None:
            with contextlib.suppress(Exception):
                self._serving.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def then_send(self, frames: list[Frame], after_connection: int = 0) -> None:
        """Send ``frames`` on a connection once its script is out (from the test thread)."""
        self._later[after_connection] = frames

        def go() -> None:
            self._release[after_connection].set()

        self._loop.call_soon_threadsafe(go)

    def acks(self, connection: int) -> list[int]:
        if connection >= len(self.received):
            return []
        return [f["seq"] for f in list(self.received[connection]) if f.get("type") == "ack"]

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._release = [asyncio.Event() for _ in range(8)]
        async with serve(self._handle, "127.0.0.1", 0, compression=None, max_size=2**20) as srv:
            self.port = int(next(iter(srv.sockets)).getsockname()[1])
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws: ServerConnection) -> None:
        index = len(self.hellos)
        self.hellos.append(json.loads(await ws.recv()))
        self.received.append([])
        reading = asyncio.get_running_loop().create_task(self._read(ws, index))
        try:
            for frame in self.scripts[index]:
                await ws.send(frame)
            if index < len(self._release):
                released = asyncio.ensure_future(self._release[index].wait())
                await asyncio.wait([released, reading], return_when=asyncio.FIRST_COMPLETED)
                released.cancel()
                for frame in self._later.get(index, []) if released.done() else []:
                    await ws.send(frame)
            await reading
        except ConnectionClosed:
            pass

    async def _read(self, ws: ServerConnection, index: int) -> None:
        try:
            async for text in ws:
                self.received[index].append(json.loads(text))
        except ConnectionClosed:
            pass


@pytest.fixture
def fake() -> Iterator[tuple[FakeGateway, Script]]:
    script = first_connection()
    gw = FakeGateway([script.frames, [welcome(acked=12), push(13, 7)]]).start()
    yield gw, script
    gw.close()


def test_malformed_frames_are_refused_and_valid_pushes_arrive_once(
    tmp_path: Path, cleanup: Cleanup, fake: tuple[FakeGateway, Script]
) -> None:
    gw, script = fake
    daemon = DaemonProc(tmp_path / "daemon", f"ws://127.0.0.1:{gw.port}", env=NO_SERVER)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.out").start()
    cleanup.add(listener.stop)

    numbers = listener.wait_numbers(script.numbers, timeout=20)
    wait_for(lambda: script.top_seq in gw.acks(0), 10, f"the ack of seq {script.top_seq}")
    wait_for(
        lambda: len(log_events(daemon, "refused a frame from the gateway")) >= script.refused,
        10,
        "every refusal in the log",
    )
    assert daemon.alive()
    st = quick_status(daemon)
    assert st is not None, "the daemon does not answer status"
    assert st["cid"] == CID
    assert st["connection"]["state"] == "connected"
    assert len(gw.hellos) == 1, "a bad frame made the daemon reconnect"
    exactly_once(numbers, script.numbers)
    assert listener.suppressed() == 0
    assert st["counters"]["received"] == len(script.numbers)
    assert st["counters"]["duplicates"] == 2
    refusals = log_events(daemon, "refused a frame from the gateway")
    assert len(refusals) == script.refused, [r.get("reason") for r in refusals]
    assert all(r.get("reason") for r in refusals)
    assert [e["code"] for e in log_events(daemon, "gateway error")] == ["teapot"]
    acks = gw.acks(0)
    assert acks == sorted(set(acks)), f"acks not cumulative: {acks}"
    assert max(acks) == script.top_seq, acks
    (extra,) = [line for line in listener.lines() if line.get("payload") == {"n": 4}]
    assert {"sound", "badge", "extra"} <= set(extra["keys"])  # unknown fields pass on

    # A frame over 256 KiB: the websocket library closes the link (1009), as documented.
    # The daemon reconnects, resumes after the last seq it recorded, and carries on.
    gw.then_send(["y" * (300 * 1024)])
    wait_for(lambda: len(gw.hellos) == 2, 15, "the daemon to reconnect")
    second = gw.hellos[1]
    assert second["cid"] == CID
    assert second["acked"] == script.top_seq
    numbers = listener.wait_numbers({*script.numbers, 7}, timeout=10)
    exactly_once(numbers, {*script.numbers, 7})
    wait_for(lambda: gw.acks(1) == [13], 10, "the ack of seq 13")
    assert daemon.alive()
    st = quick_status(daemon)
    assert st is not None
    assert st["connection"]["state"] == "connected"


def test_an_oversized_frame_is_named_in_last_error(tmp_path: Path, cleanup: Cleanup) -> None:
    gw = FakeGateway([[welcome(), "y" * (300 * 1024)], [welcome()]]).start()
    cleanup.add(gw.close)
    daemon = DaemonProc(tmp_path / "daemon", f"ws://127.0.0.1:{gw.port}", env=NO_SERVER)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    wait_for(lambda: len(gw.hellos) == 2, 15, "the daemon to reconnect")
    st = quick_status(daemon)
    assert st is not None
    assert "1009" in (st["connection"]["last_error"] or ""), st["connection"]

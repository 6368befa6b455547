"""runtime/link.py against an in-process websocket server playing the gateway.

The server speaks the frames of wire/gateway.py by hand, so each test decides what the
gateway does (welcome, pushes, errors, silence) and sees every frame the link sends.
The peer is a fake LinkPeer whose record() can fail the way a disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from unipush_bridge.runtime.link import Backoff, Link
from unipush_bridge.wire.gateway import PushMessage

APPID = "__UNI__LINK"
CID = "0123456789abcdef0123456789abcdef"
NEW_CID = "fedcba9876543210fedcba9876543210"
WAIT = 2.0

Pushes = Sequence[tuple[int, str, PushMessage]]
Fresh = list[tuple[str, PushMessage]]


# the gateway's side ----------------------------------------------------------------------


class FakeGateway:
    """Hands each accepted websocket to the test; the test plays the gateway on it."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.all: list[ServerConnection] = []
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.all.append(ws)
        await self.accepted.put(ws)
        await ws.wait_closed()

    async def accept(self, timeout: float = WAIT) -> ServerConnection:
        return await asyncio.wait_for(self.accepted.get(), timeout)

    async def hello(self, timeout: float = WAIT) -> tuple[ServerConnection, dict[str, Any]]:
        """The next connection and its first frame, which must be a hello."""
        ws = await self.accept(timeout)
        frame = await recv_json(ws)
        assert frame["type"] == "hello", frame
        return ws, frame

    async def registered(self, acked: int = 0, cid: str = CID) -> ServerConnection:
        ws, _ = await self.hello()
        await ws.send(welcome(cid, acked))
        return ws


async def recv_json(ws: ServerConnection, timeout: float = WAIT) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


def welcome(cid: str = CID, acked: int = 0, backlog: int = 0) -> str:
    return json.dumps({"type": "welcome", "v": 1, "cid": cid, "acked": acked, "backlog": backlog})


def push(seq: int, title: str | None = None) -> str:
    message = {"title": title or f"t{seq}", "content": "c", "payload": {"seq": seq}}
    return json.dumps({"type": "push", "seq": seq, "id": f"m{seq}", "message": message})


def error(code: str, message: str, fatal: bool) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, "fatal": fatal})


async def ack_seqs_until(ws: ServerConnection, last: int) -> list[int]:
    """Every ack the link sends on ``ws`` up to and including one for ``last``."""
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        frame = await recv_json(ws)
        assert frame["type"] == "ack", frame
        seqs.append(frame["seq"])
    return seqs


# the daemon's side -----------------------------------------------------------------------


@dataclass
class FakePeer:
    """A LinkPeer: record() commits to a list unless ``fail_record`` says otherwise."""

    appid: str = APPID
    cid: str | None = CID
    acked: int = 0
    #: Raised by record() while set, as SQLite raises on a full or failing disk.
    fail_record: BaseException | None = None
    #: Ids record() reports as seen before (duplicates).
    seen: set[str] = field(default_factory=set)
    batches: list[list[int]] = field(default_factory=list)
    returned: list[Fresh] = field(default_factory=list)
    handed_on: list[tuple[Fresh, int]] = field(default_factory=list)
    registrations: list[tuple[str, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    hand_on_calls: asyncio.Queue[tuple[Fresh, int]] = field(default_factory=asyncio.Queue)
    registered_calls: asyncio.Queue[tuple[str, int]] = field(default_factory=asyncio.Queue)
    on_record: Callable[[], None] | None = None
    #: Raised by durable() while set, as a failing fsync raises.
    fail_sync: BaseException | None = None
    synced: int = 0

    def identity(self) -> tuple[str | None, int]:
        return self.cid, self.acked

    def secret(self) -> str:
        return "s" * 64

    def registered(self, cid: str, acked: int) -> None:
        self.cid, self.acked = cid, acked
        self.registrations.append((cid, acked))
        self.registered_calls.put_nowait((cid, acked))

    def registration_failed(self, reason: str) -> None:
        self.failures.append(reason)

    def record(self, pushes: Pushes) -> Fresh:
        if self.on_record is not None:
            self.on_record()
        if self.fail_record is not None:
            raise self.fail_record
        self.batches.append([seq for seq, _, _ in pushes])
        self.acked = max(self.acked, *(seq for seq, _, _ in pushes))
        fresh = [(mid, msg) for _, mid, msg in pushes if mid not in self.seen]
        self.seen.update(mid for _, mid, _ in pushes)
        self.returned.append(fresh)
        return fresh

    async def hand_on(self, fresh: Fresh, duplicates: int = 0) -> None:
        self.handed_on.append((fresh, duplicates))
        self.hand_on_calls.put_nowait((fresh, duplicates))

    async def durable(self) -> None:
        if self.fail_sync is not None:
            raise self.fail_sync
        self.synced += 1

    @property
    def recorded_max(self) -> int:
        return max((max(b) for b in self.batches), default=0)


@dataclass
class Harness:
    gateway: FakeGateway
    peer: FakePeer
    link: Link
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_link(
    peer: FakePeer | None = None,
    *,
    ping_interval: float = 30.0,
    ping_timeout: float = 20.0,
    backoff: Backoff | None = None,
    token: str | None = None,
) -> AsyncIterator[Harness]:
    gateway = FakeGateway()
    async with serve(gateway.handler, "127.0.0.1", 0, compression=None) as server:
        gateway.port = server.sockets[0].getsockname()[1]
        the_peer = peer or FakePeer()
        link = Link(
            f"ws://127.0.0.1:{gateway.port}",
            the_peer,
            token=token,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            backoff=backoff or Backoff(initial=0.05),
        )
        task = asyncio.get_running_loop().create_task(link.run())
        try:
            yield Harness(gateway, the_peer, link, task)
        finally:
            link.stop()
            try:
                await asyncio.wait_for(task, WAIT)
            finally:
                for ws in gateway.all:  # a paused or silent test connection: no handshake
                    ws.transport.abort()


# record before ack --------------------------------------------------------------------------


async def test_no_ack_for_a_batch_whose_commit_failed() -> None:
    """A disk error in record() must not be acknowledged: the gateway would delete
    messages the daemon never stored. The link drops and resends the hello from the
    old cursor; once the disk works again the same pushes are recorded and acked."""
    peer = FakePeer(fail_record=OSError("disk I/O error"))
    async with running_link(peer) as h:
        ws, hello = await h.gateway.hello()
        assert hello["acked"] == 0
        await ws.send(welcome())
        for seq in (1, 2, 3):
            await ws.send(push(seq))
        # The link gives up on this connection; nothing it sent after the hello may be
        # an ack (whatever else it might send, an ack here means a lost message).
        with pytest.raises(ConnectionClosed):
            frame = await recv_json(ws)
            raise AssertionError(f"the link sent {frame} for a batch it did not commit")
        assert peer.batches == [] and peer.handed_on == []
        assert h.link.status.last_error == "OSError: disk I/O error"

        peer.fail_record = None
        ws2, hello2 = await h.gateway.hello()
        assert hello2["acked"] == 0  # the cursor did not move past the failed batch
        await ws2.send(welcome())
        for seq in (1, 2, 3):
            await ws2.send(push(seq))
        acks = await ack_seqs_until(ws2, 3)
        assert acks[-1] == peer.recorded_max == 3


async def test_no_ack_when_the_fsync_fails() -> None:
    """The commit survives a crash, but the gateway may forget only what survives power
    loss: a failed fsync leaves the batch unacknowledged (it is still handed on, as
    it is recorded)."""
    peer = FakePeer(fail_sync=OSError("fsync failed"))
    async with running_link(peer) as h:
        ws, _ = await h.gateway.hello()
        await ws.send(welcome())
        await ws.send(push(1))
        with pytest.raises(ConnectionClosed):
            frame = await recv_json(ws)
            raise AssertionError(f"the link sent {frame} before the batch was durable")
        assert peer.batches == [[1]] and len(peer.handed_on) == 1


async def test_the_ack_names_the_highest_seq_recorded_and_follows_the_commit() -> None:
    async with running_link() as h:
        ws = await h.gateway.registered()
        seqs = [3, 5, 9, 12]  # seqs are not contiguous
        for seq in seqs:
            await ws.send(push(seq))
        acks = await ack_seqs_until(ws, 12)
        # each ack is a committed batch's highest seq (one fsync may cover several
        # batches, so some batches get no ack of their own), and they only go up
        assert set(acks) <= {max(batch) for batch in h.peer.batches}
        assert acks == sorted(set(acks))
        assert sorted(s for batch in h.peer.batches for s in batch) == seqs
        assert h.peer.acked == 12


async def test_every_ack_arrives_after_its_seq_was_committed() -> None:
    """When the gateway reads ack N, the daemon has already committed N."""
    async with running_link() as h:
        ws = await h.gateway.registered()
        for seq in range(1, 21):
            await ws.send(push(seq))
            frame = await recv_json(ws)
            assert frame == {"type": "ack", "seq": seq}
            assert h.peer.recorded_max >= seq


async def test_the_next_batch_is_handed_on_while_the_last_ones_fsync_runs() -> None:
    """issue 8 item 10: the listener of push 2 does not wait for push 1's fsync (it
    did: the read loop awaited each batch's fsync and ack before the next batch). The
    acks still wait: ack N only after an fsync that began once N was committed."""
    gate = asyncio.Event()
    started: list[int] = []  # the highest seq committed as each fsync began

    class SlowDisk(FakePeer):
        async def durable(self) -> None:
            started.append(self.recorded_max)
            await gate.wait()
            self.synced += 1

    peer = SlowDisk()
    async with running_link(peer) as h:
        ws = await h.gateway.registered()
        await ws.send(push(1))
        await asyncio.wait_for(peer.hand_on_calls.get(), WAIT)
        await ws.send(push(2))
        await ws.send(push(3))
        while sum(len(f) for f, _ in peer.handed_on) < 3:  # all handed on, disk stuck
            await asyncio.wait_for(peer.hand_on_calls.get(), WAIT)
        assert peer.synced == 0 and started == [1]  # one fsync in flight, not three
        with pytest.raises(TimeoutError):  # and no ack before it returns
            await asyncio.wait_for(recv_json(ws), 0.2)
        gate.set()
        acks = await ack_seqs_until(ws, 3)
        assert acks == [1, 3]  # the first fsync covered 1; the next one 2 and 3
        assert started == [1, 3] and peer.synced == 2


async def test_hand_on_gets_exactly_what_record_returned() -> None:
    peer = FakePeer(seen={"m2"})  # m2 was handed on in an earlier run
    async with running_link(peer) as h:
        ws = await h.gateway.registered()
        await ws.send(push(1))
        await ws.send(push(2))
        acks = await ack_seqs_until(ws, 2)
        assert acks[-1] == 2
        handed: list[tuple[Fresh, int]] = []
        while sum(len(f) + d for f, d in handed) < 2:
            handed.append(await asyncio.wait_for(peer.hand_on_calls.get(), WAIT))
        for (fresh, duplicates), returned, batch in zip(
            handed, peer.returned, peer.batches, strict=True
        ):
            assert fresh is returned  # the very list record() gave back
            assert duplicates == len(batch) - len(returned)
        assert [mid for fresh, _ in handed for mid, _ in fresh] == ["m1"]
        assert sum(d for _, d in handed) == 1


async def test_recorded_pushes_are_handed_on_even_when_the_ack_cannot_be_sent() -> None:
    """The gateway sends a push and drops the link in the same write: record() commits,
    sending the ack fails on the closed link, and what was committed must still be
    handed on now (not stranded in the inbox until the next start)."""
    link_state: list[str] = []
    async with running_link() as h:
        ws = await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)

        def note_state() -> None:  # the link's socket as record() runs
            assert h.link._ws is not None
            link_state.append(h.link._ws.protocol.state.name)

        h.peer.on_record = note_state
        # One TCP write holding the push and a close frame: the link has both before it
        # processes the push, so its ack meets a closing connection.
        ws.protocol.send_text(push(7).encode())
        ws.protocol.send_close(1000, "bye")
        ws.send_data()
        fresh, duplicates = await asyncio.wait_for(h.peer.hand_on_calls.get(), WAIT)
        assert [mid for mid, _ in fresh] == ["m7"]
        assert duplicates == 0
        assert fresh is h.peer.returned[0]
        assert h.peer.batches == [[7]]
        assert link_state == ["CLOSING"]  # the ack really was sent into a dead link
        # and the link comes back
        _, hello = await h.gateway.hello()
        assert hello["acked"] == 7


# frames from the gateway -------------------------------------------------------------------


async def test_welcome_registers_the_cid_and_cursor_it_carries() -> None:
    peer = FakePeer(cid=CID, acked=41)
    async with running_link(peer, token="s3cret") as h:
        ws, hello = await h.gateway.hello()
        assert hello == {
            "type": "hello",
            "v": 1,
            "appid": APPID,
            "cid": CID,
            "token": "s3cret",
            "acked": 41,
            "secret": "s" * 64,
        }
        await ws.send(welcome(NEW_CID, acked=0, backlog=4))
        assert await asyncio.wait_for(peer.registered_calls.get(), WAIT) == (NEW_CID, 0)
        assert h.link.status.state == "connected"
        assert h.link.status.backlog_at_connect == 4
        assert h.link.status.attempts == 0


async def test_a_first_run_sends_no_cid() -> None:
    peer = FakePeer(cid=None, acked=0)
    async with running_link(peer) as h:
        _, hello = await h.gateway.hello()
        assert "cid" not in hello and "token" not in hello
        assert hello["acked"] == 0


async def test_an_invalid_frame_is_logged_and_the_link_stays_up() -> None:
    async with running_link() as h:
        ws = await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        with capture_logs() as logs:
            await ws.send("not json")
            await ws.send(json.dumps({"type": "push", "seq": 0, "id": "x", "message": {}}))
            await ws.send(json.dumps({"type": "nope"}))
            await ws.send(welcome())  # a second welcome is refused too
            await ws.send(push(8))
            acks = await ack_seqs_until(ws, 8)
        assert acks == [8]
        assert h.peer.batches == [[8]]
        refused = [e for e in logs if e["event"] == "refused a frame from the gateway"]
        assert len(refused) == 4, logs
        assert all(e["log_level"] == "warning" and e["reason"] for e in refused)
        assert h.gateway.accepted.empty() and len(h.gateway.all) == 1  # same connection
        assert h.peer.registrations == [(CID, 0)]
        await ws.send(push(9))
        assert await ack_seqs_until(ws, 9) == [9]


async def test_a_push_before_the_welcome_is_not_recorded() -> None:
    async with running_link() as h:
        ws, _ = await h.gateway.hello()
        await ws.send(push(1))
        await ws.send(welcome())
        await ws.send(push(2))
        assert await ack_seqs_until(ws, 2) == [2]
        assert h.peer.batches == [[2]]


async def test_a_fatal_error_reports_registration_failed_then_reconnects() -> None:
    async with running_link() as h:
        ws, _ = await h.gateway.hello()
        await ws.send(error("unauthorized", "hello.token: wrong or missing", fatal=True))
        await ws.close(4401, "unauthorized")
        ws2, _ = await h.gateway.hello()
        assert h.peer.failures == [
            json.dumps({"errorCode": "unauthorized", "errorMsg": "hello.token: wrong or missing"})
        ]
        assert h.link.status.last_error == "closed by the gateway (4401: unauthorized)"
        # a non-fatal error is only logged
        await ws2.send(welcome())
        await ws2.send(error("bad_frame", "ack.seq: must be at least 1", fatal=False))
        await ws2.send(push(1))
        assert await ack_seqs_until(ws2, 1) == [1]
        assert len(h.peer.failures) == 1


# keepalive and reconnects ------------------------------------------------------------------


async def test_a_gateway_that_stops_answering_pings_is_aborted_and_reconnected() -> None:
    async with running_link(ping_interval=0.05, ping_timeout=0.1) as h:
        ws = await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        # The gateway's end goes deaf: pings are never read, so no pong comes back.
        ws.transport.pause_reading()
        ws2, _ = await h.gateway.hello()
        assert h.link.status.last_error == "no pong within 0.1 s"
        await ws2.send(welcome())
        assert await asyncio.wait_for(h.peer.registered_calls.get(), WAIT) == (CID, 0)
        await ws2.send(push(1))
        assert await ack_seqs_until(ws2, 1) == [1]


async def test_a_link_whose_send_buffer_is_full_is_aborted_too() -> None:
    """The gateway stops reading while the daemon's side has more to send than the
    socket takes (a stalled peer, a NAT that blackholes one direction): websockets'
    ping() waits for the write buffer to drain before it even sends, so the ping
    timeout must cover that wait too, or the link is never found dead."""
    async with running_link(ping_interval=0.05, ping_timeout=0.2) as h:
        ws = await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        ws.transport.pause_reading()
        client = h.link._ws
        assert client is not None
        # More than the kernel's buffers take: the rest waits in the transport, which
        # pauses writing; what it holds is never read, so its content does not matter.
        client.transport.write(b"\x00" * 64 * 1024 * 1024)
        assert client.transport.get_write_buffer_size() > 0
        ws2, _ = await h.gateway.hello(timeout=5)
        assert h.link.status.last_error == "no pong within 0.2 s"
        await ws2.send(welcome())
        assert await asyncio.wait_for(h.peer.registered_calls.get(), WAIT) == (CID, 0)


async def test_a_gateway_that_answers_pings_keeps_the_link() -> None:
    async with running_link(ping_interval=0.02, ping_timeout=0.5) as h:
        await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        with pytest.raises(TimeoutError):
            await h.gateway.accept(timeout=0.3)  # ~15 pings answered, no reconnect
        assert h.link.status.state == "connected"


async def test_wake_reconnects_at_once_without_the_backoff() -> None:
    async with running_link(backoff=Backoff(initial=60.0)) as h:
        await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        h.link.wake("resumed from suspend")
        await h.gateway.registered()  # well before any 30-60 s backoff
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        assert h.link.status.last_error == "resumed from suspend: reconnecting"


async def test_an_aborted_link_stops_saying_connected_at_once() -> None:
    """The old link's teardown (its last acks, the close) takes loop turns: the status
    must not call a link connected that was just aborted, or a caller that waits for
    "connected" sees the dead link and not the new one."""
    async with running_link(backoff=Backoff(initial=60.0)) as h:
        await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        assert h.link.status.state == "connected"
        h.link.wake("SIGCONT (resumed)")
        assert h.link.status.state == "connecting"
        assert h.link.status.connected_since is None
        await h.gateway.registered()
        await asyncio.wait_for(h.peer.registered_calls.get(), WAIT)
        assert h.link.status.state == "connected"


async def test_a_dropped_connection_is_retried_with_backoff() -> None:
    async with running_link(backoff=Backoff(initial=0.05)) as h:
        ws, _ = await h.gateway.hello()
        await ws.close(1001, "going away")
        _, hello = await h.gateway.hello()
        assert hello["type"] == "hello"
        assert h.link.status.last_error == "closed by the gateway (1001: going away)"
        assert h.link.backoff.attempts >= 1


async def test_a_batch_recorded_as_the_last_ack_leaves_is_acknowledged_too() -> None:
    """Recorded between the ack task's last send and its end (its done callback had not
    run): no new task started, and the stream's last ack never left (the gateway kept
    the message; seen as a flaky tests/faults/test_held_pushes.py)."""
    from unipush_bridge.runtime.link import DurableAcks
    from unipush_bridge.runtime.session import ClientSession

    loop = asyncio.get_running_loop()
    sent: list[int] = []
    acks: DurableAcks

    class Ws:
        async def send(self, frame: str) -> None:
            sent.append(json.loads(frame)["seq"])
            if len(sent) == 1:  # the next batch's commit lands before this task ends
                loop.call_soon(acks.recorded, 2)

    async def durable() -> None:
        await asyncio.sleep(0)

    acks = DurableAcks(Ws(), ClientSession("app", "c" * 32, 0), durable, lambda why: None)  # type: ignore[arg-type]
    acks.recorded(1)
    for _ in range(20):
        await asyncio.sleep(0)
    await acks.drain()
    assert sent == [1, 2]

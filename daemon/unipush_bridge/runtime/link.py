"""The websocket link to the gateway: connect, register, read, acknowledge, reconnect.

All protocol decisions are in :mod:`.session`; all delivery decisions in
:mod:`.core`, reached through :class:`LinkPeer`. This module moves frames, batches
acknowledgements and watches the link: a ping that gets no pong in time means the
link is dead, and a dead socket is aborted at once rather than closed politely over a
link that cannot carry the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..errors import UnipushError
from ..wire import gateway as protocol
from ..wire.gateway import PushMessage
from .session import (
    ClientSession,
    Deliver,
    Event,
    GatewayError,
    ReceiptEvent,
    Refused,
    Registered,
)

log = structlog.get_logger(__name__)

#: Frames handled per batch: one SQLite commit and one ack for all of them.
MAX_BATCH = 500
#: ... and their size (characters). A batch goes to a listener at once and the driver
#: keeps MAX_HOLDS (4) out: 4 of them must fit a listener's 4 MiB output cap (local
#: API), or a listener that reads would be cut for every batch of large pushes, and
#: cut again for the held ones when it comes back (500 frames of 256 KiB: 125 MiB).
MAX_BATCH_BYTES = 512 * 1024
#: Frames read ahead of processing before the reader waits (TCP pushes back), and
#: their size: a gateway faster than the daemon (a slow listener holds the link up)
#: must not fill the daemon's memory instead of its TCP window.
READ_AHEAD = 2000
READ_AHEAD_BYTES = 4 * 1024 * 1024
#: Frames the websocket library buffers before it stops reading (its own default),
#: ahead of the reader that moves them into the read-ahead.
LIBRARY_QUEUE = 16
#: The welcome is given at least this long (the gateway's own wait for a hello), so
#: short keepalive settings do not leave a gateway that is only slow to answer.
WELCOME_WAIT_S = 10.0


@dataclass
class Backoff:
    """Full-jitter exponential backoff, reset only after a connection stayed up for
    ``stable_after`` seconds: a gateway that accepts and then drops us must not get
    a fast reconnect loop."""

    initial: float = 0.5
    cap: float = 60.0
    stable_after: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.attempts += 1
        ceiling = min(self.cap, self.initial * 2 ** (self.attempts - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def connection_ended(self, lasted: float) -> None:
        if lasted >= self.stable_after:
            self.attempts = 0


@dataclass
class LinkStatus:
    state: str = "connecting"  # connecting | connected | backing_off | stopped
    last_error: str | None = None
    attempts: int = 0
    connected_since: float | None = None
    retry_at: float | None = None
    #: Messages the gateway held for us when we last registered.
    backlog_at_connect: int = 0
    #: Called when ``state`` changes: the daemon's watchers (runtime/changes.py).
    on_change: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def enter(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change()

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "last_error": self.last_error,
            "attempts": self.attempts,
            "connected_since": self.connected_since,
            "retry_at": self.retry_at,
            "backlog_at_connect": self.backlog_at_connect,
        }


class LinkPeer(Protocol):
    """What the link needs from the daemon: identity, and a place for pushes."""

    appid: str

    def identity(self) -> tuple[str | None, int]:
        """The stored cid (None before the first registration) and cursor."""
        ...

    def secret(self) -> str:
        """This install's durable secret, sent in every hello to prove the cid is ours."""
        ...

    def registered(self, cid: str, acked: int) -> None: ...

    def registration_failed(self, reason: str) -> None: ...

    def record(
        self, pushes: Sequence[tuple[int, str, PushMessage]]
    ) -> list[tuple[str, PushMessage]]:
        """Commit pushes durably; returns the ones not seen before."""
        ...

    async def hand_on(self, fresh: list[tuple[str, PushMessage]], duplicates: int = 0) -> None:
        """Route what was recorded; may wait to slow the link down."""
        ...

    async def durable(self) -> None:
        """Return once what record() committed survives power loss."""
        ...


class Link:
    def __init__(
        self,
        url: str,
        peer: LinkPeer,
        *,
        token: str | None = None,
        ping_interval: float = 30.0,
        ping_timeout: float = 20.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = protocol.websocket_url(url)
        self.peer = peer
        self.token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff = backoff or Backoff()
        self.status = LinkStatus()
        self._stopping = False
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._live: tuple[ClientConnection, ClientSession] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._dead_reason: str | None = None
        #: This machine's clock less the gateway's, measured at the welcome: a push's
        #: hold_until is on the gateway's clock, the daemon judges it by its own.
        self._clock_offset = 0.0

    # control ---------------------------------------------------------------------------

    def set_keepalive(self, interval: float, timeout: float) -> None:
        """Takes effect from the next ping."""
        self.ping_interval = interval
        self.ping_timeout = timeout

    def stop(self) -> None:
        """Finish the batch in hand, then close; the close ends the wait for frames."""
        self._stopping = True
        self._wake.set()
        if self._ws is not None:
            task = asyncio.get_running_loop().create_task(self._ws.close())
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def wake(self, why: str) -> None:
        """After suspend (or SIGCONT) the socket may be half-open: drop it and
        reconnect now, without waiting for the backoff or for a ping to time out."""
        log.info("reconnecting now", reason=why)
        self._wake.set()
        if self._ws is not None:
            self._abort(self._ws, f"{why}: reconnecting")

    def _abort(self, ws: ClientConnection, reason: str) -> None:
        self._dead_reason = reason
        ws.transport.abort()
        if self._ws is ws:
            # Tearing the old link down takes loop turns (its last acks, the close):
            # until the next one registers, the status must not call it connected.
            self.status.enter("connecting")
            self.status.connected_since = None

    # main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            self.status.enter("connecting")
            self._wake.clear()
            started = time.monotonic()
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                self._failed(self._dead_reason or _describe_close(exc))
            except InvalidURI as exc:
                self._failed(f"invalid gateway URL: {exc}")
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            except UnipushError as exc:
                # A named condition with a fix, such as a full state dir: no traceback.
                log.error("gateway link stopped", reason=str(exc))
                self._failed(str(exc))
            except Exception as exc:
                # A bug must not end the link for good: log it loudly and reconnect.
                log.exception("unexpected error on the gateway link")
                self._failed(f"internal error: {type(exc).__name__}")
            if self._stopping:
                break
            self.backoff.connection_ended(time.monotonic() - started)
            if self._wake.is_set():
                continue  # woken (resume, SIGCONT): no backoff
            delay = self.backoff.next_delay()
            self.status.enter("backing_off")
            self.status.attempts = self.backoff.attempts
            self.status.retry_at = time.time() + delay
            log.info("reconnecting", delay=round(delay, 2), attempt=self.backoff.attempts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        self.status.enter("stopped")

    def _failed(self, reason: str) -> None:
        self.status.last_error = reason
        self.status.connected_since = None
        log.warning("gateway link down", reason=reason)

    async def _connect_once(self) -> None:
        peer = self.peer
        self._dead_reason = None
        async with connect(
            self.url,
            ping_interval=None,  # our own keepalive below aborts a dead link at once
            max_size=protocol.MAX_FRAME_BYTES,
            open_timeout=10,
            close_timeout=2,
            compression=None,  # frames are small; deflate costs memory on both ends
            max_queue=LIBRARY_QUEUE,
        ) as ws:
            self._ws = ws
            cid, acked = peer.identity()
            session = ClientSession(peer.appid, cid, acked, self.token, peer.secret())
            keepalive = asyncio.get_running_loop().create_task(self._keepalive(ws))
            try:
                await ws.send(session.hello())
                await self._read(ws, session)
                if not self._stopping:  # the gateway closed cleanly (1000, 1001): say so
                    raise ConnectionClosed(
                        ws.protocol.close_rcvd,
                        ws.protocol.close_sent,
                        ws.protocol.close_rcvd_then_sent,
                    )
            finally:
                keepalive.cancel()
                self._ws = None
                self._live = None

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Ping every ``ping_interval``; no pong in ``ping_timeout`` is a dead link, and
        a pong while the welcome has not come yet (WELCOME_WAIT_S after the hello at
        least) is a gateway stuck on our hello."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                # ping() itself waits for the write buffer to drain: a peer that stopped
                # reading holds it there, so the timeout covers the send as well.
                async with asyncio.timeout(self.ping_timeout):
                    pong = await ws.ping()
                    await pong
            except TimeoutError:
                log.warning(
                    "no pong from the gateway; aborting the link", timeout=self.ping_timeout
                )
                self._abort(ws, f"no pong within {self.ping_timeout:g} s")
                return
            except ConnectionClosed:
                return
            waited = time.monotonic() - started
            if (self._live is None or self._live[0] is not ws) and waited >= WELCOME_WAIT_S:
                # It answers pings but not the hello (a node whose store hangs, a proxy
                # whose backend is stuck): waiting on would wait for ever; another
                # attempt may reach a node that works.
                log.warning("no welcome from the gateway; aborting the link", waited=waited)
                self._abort(ws, f"no welcome within {waited:.0f} s of the hello")
                return

    async def _read(self, ws: ClientConnection, session: ClientSession) -> None:
        """Handle frames in batches: everything already received is recorded in one
        commit and handed on; its ack follows the fsync that covers it, which does not
        hold up the next batch."""
        frames = ReadAhead(READ_AHEAD, READ_AHEAD_BYTES)
        reader = asyncio.get_running_loop().create_task(self._reader(ws, frames))
        acks = DurableAcks(ws, session, self.peer.durable, lambda why: self._abort(ws, why))
        try:
            while not self._stopping:
                batch = await frames.batch(MAX_BATCH, MAX_BATCH_BYTES)
                if batch[0] is None:
                    break
                done = batch[-1] is None
                events = [e for text in batch if text is not None for e in session.receive(text)]
                await self._handle(session, events, acks)
                if done:
                    break
            await acks.drain()  # the last ack out, or the fsync's error raised here
        finally:
            acks.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader  # re-raises how reading ended (ConnectionClosedError, ...)

    @staticmethod
    async def _reader(ws: ClientConnection, frames: ReadAhead) -> None:
        try:
            async for text in ws:
                await frames.put(text)
        finally:
            # Wake the processor however reading ended; it drains what came first.
            frames.end()

    async def _handle(self, session: ClientSession, events: list[Event], acks: DurableAcks) -> None:
        peer = self.peer
        pending: list[Deliver] = []
        for event in events:
            if isinstance(event, Deliver):
                pending.append(event)
                continue
            await self._deliver(pending, acks)
            pending = []
            if isinstance(event, Registered):
                if event.gateway_time is not None:
                    self._clock_offset = time.time() - event.gateway_time
                peer.registered(event.cid, event.acked)
                self._live = (acks.ws, session)
                self.status.enter("connected")
                self.status.attempts = 0
                self.status.connected_since = time.time()
                self.status.retry_at = None
                self.status.backlog_at_connect = event.backlog
                log.info(
                    "connected to the gateway", url=self.url, cid=event.cid, backlog=event.backlog
                )
            elif isinstance(event, Refused):
                log.warning("refused a frame from the gateway", reason=event.reason)
            else:
                self._gateway_error(event)
        await self._deliver(pending, acks)

    async def _deliver(self, batch: list[Deliver], acks: DurableAcks) -> None:
        """Record (a commit that survives a crash), then hand on while the fsync that
        makes it survive power loss runs; the ack waits for that fsync: the gateway
        forgets only what is on disk, and neither the listener nor the next batch waits
        for the disk. What is recorded is handed on whatever happens to the link
        meanwhile: a dead link must not strand it until a restart."""
        if not batch:
            return
        fresh = self.peer.record([(d.seq, d.id, self._on_our_clock(d.message)) for d in batch])
        acks.recorded(max(d.seq for d in batch))
        await self.peer.hand_on(fresh, len(batch) - len(fresh))

    def _on_our_clock(self, message: PushMessage) -> PushMessage:
        """``hold_until`` moved from the gateway's clock to this machine's (recorded so):
        a desktop clock hours ahead let every held push go at once."""
        if message.hold_until is None or not self._clock_offset:
            return message
        return replace(message, hold_until=message.hold_until + self._clock_offset)

    def _gateway_error(self, event: GatewayError) -> None:
        log.warning("gateway error", code=event.code, message=event.message, fatal=event.fatal)
        if event.fatal:
            detail = {"errorCode": event.code, "errorMsg": event.message}
            self.peer.registration_failed(json.dumps(detail, ensure_ascii=False))

    # receipts ---------------------------------------------------------------------------

    def receipt(self, message_id: str, taskid: str | None, event: ReceiptEvent) -> None:
        """Best effort: receipts feed the gateway's reports; one lost with a link is fine."""
        if self._live is None:
            return
        ws, session = self._live
        task = asyncio.get_running_loop().create_task(
            self._send_quietly(ws, session.receipt(message_id, taskid, event))
        )
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    @staticmethod
    async def _send_quietly(ws: ClientConnection, frame: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)


Frame = str | bytes


class ReadAhead:
    """Frames read off the link and not handled yet, then None once reading ended.
    Bounded in count and in size: ``put`` waits while it is full (one frame always
    fits), so a gateway that sends faster than the daemon hands on is held back by
    TCP, not by the daemon's memory. Nothing is dropped."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[Frame | None] = deque()
        self._bytes = 0
        self._room = asyncio.Event()
        self._ready = asyncio.Event()

    def _full(self) -> bool:
        return bool(self._frames) and (
            len(self._frames) >= self.max_frames or self._bytes >= self.max_bytes
        )

    async def put(self, frame: Frame) -> None:
        while self._full():
            self._room.clear()
            await self._room.wait()
        self._frames.append(frame)
        self._bytes += len(frame)
        self._ready.set()

    def end(self) -> None:
        """Reading ended: never waits (the processor must be woken however it ended)."""
        self._frames.append(None)
        self._ready.set()

    async def batch(self, max_frames: int, max_bytes: int) -> list[Frame | None]:
        """The oldest frames, at least one, at most ``max_frames`` and (beyond the first)
        ``max_bytes``; the end (None) comes last, with what came before it."""
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        out: list[Frame | None] = []
        size = 0
        while self._frames and len(out) < max_frames:
            head = self._frames[0]
            cost = 0 if head is None else len(head)
            if out and size + cost > max_bytes:
                break
            out.append(self._frames.popleft())
            size += cost
            if head is None:
                break
        self._bytes -= size
        self._room.set()
        return out


class DurableAcks:
    """Acks that follow the fsync covering their commit, one fsync in flight at a time:
    batches committed while it runs are covered by the next one, so a stream gets one
    fsync and one ack per disk round trip, not per batch, and acks leave in seq order."""

    def __init__(
        self,
        ws: ClientConnection,
        session: ClientSession,
        durable: Callable[[], Awaitable[None]],
        abort: Callable[[str], None],
    ) -> None:
        self.ws = ws
        self._session = session
        self._durable = durable
        self._abort = abort
        self._recorded = 0  # the highest seq committed on this connection
        self._task: asyncio.Task[None] | None = None

    def recorded(self, seq: int) -> None:
        """``seq`` is committed: ack it once an fsync that started after it returns."""
        self._recorded = max(self._recorded, seq)
        task = self._task
        # One that returned but whose done callback has not run yet acks nothing more.
        ended = task is not None and task.done() and not task.cancelled() and not task.exception()
        if task is None or ended:
            self._task = asyncio.get_running_loop().create_task(self._run())
            self._task.add_done_callback(self._ended)

    async def _run(self) -> None:
        acked = 0
        while acked < self._recorded:
            target = self._recorded
            await self._durable()  # a failed fsync raises: no ack
            ack = self._session.recorded(target)
            if ack is not None:
                await self.ws.send(ack)
            acked = target

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        if task.exception() is None:
            if task is self._task:
                self._task = None  # the next commit starts the next fsync
        elif not isinstance(task.exception(), ConnectionClosed):
            self._abort(f"no ack: {task.exception()}")  # drain() raises it

    async def drain(self) -> None:
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _describe_close(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is not None:
        reason = f": {frame.reason}" if frame.reason else ""
        return f"closed by the gateway ({frame.code}{reason})"
    if exc.sent is not None:  # we closed it, e.g. 1009 for a frame over the size limit
        reason = f": {exc.sent.reason}" if exc.sent.reason else ""
        return f"closed by the daemon ({exc.sent.code}{reason})"
    return "connection lost"

"""The websocket link to the gateway: connect, register, read, acknowledge, reconnect.

All protocol decisions are in :mod:`session`; all delivery decisions in
:mod:`bridge`. This module only moves frames and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import protocol
from .bridge import Bridge
from .session import (
    ClientSession,
    Deliver,
    GatewayError,
    ReceiptEvent,
    Refused,
    Registered,
)

log = structlog.get_logger(__name__)


@dataclass
class Backoff:
    """Full-jitter exponential backoff; reset once a connection has registered."""

    initial: float = 0.5
    cap: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.attempts += 1
        ceiling = min(self.cap, self.initial * 2 ** (self.attempts - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class LinkStatus:
    state: str = "connecting"  # connecting | connected | backing_off | stopped
    last_error: str | None = None
    attempts: int = 0
    connected_since: float | None = None
    retry_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "last_error": self.last_error,
            "attempts": self.attempts,
            "connected_since": self.connected_since,
            "retry_at": self.retry_at,
        }


class Link:
    def __init__(
        self,
        url: str,
        bridge: Bridge,
        *,
        token: str | None = None,
        ping_interval: float = 30.0,
        ping_timeout: float = 20.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = protocol.websocket_url(url)
        self.bridge = bridge
        self.token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff = backoff or Backoff()
        self.status = LinkStatus()
        self._stopping = False
        self._live: tuple[ClientConnection, ClientSession] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        bridge.on_receipt = self._receipt

    def _receipt(self, message_id: str, taskid: str | None, event: ReceiptEvent) -> None:
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

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            self.status.state = "connecting"
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                self._failed(_describe_close(exc))
            except InvalidURI as exc:
                self._failed(f"invalid gateway URL: {exc}")
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            except Exception as exc:
                # A bug must not end the link for good: log it loudly and reconnect.
                log.exception("unexpected error on the gateway link")
                self._failed(f"internal error: {type(exc).__name__}")
            if self._stopping:
                break
            delay = self.backoff.next_delay()
            self.status.state = "backing_off"
            self.status.attempts = self.backoff.attempts
            self.status.retry_at = time.time() + delay
            log.info("reconnecting", delay=round(delay, 2), attempt=self.backoff.attempts)
            await asyncio.sleep(delay)
        self.status.state = "stopped"

    def _failed(self, reason: str) -> None:
        self.status.last_error = reason
        self.status.connected_since = None
        log.warning("gateway link down", reason=reason)

    async def _connect_once(self) -> None:
        bridge = self.bridge
        async with connect(
            self.url,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_size=protocol.MAX_FRAME_BYTES,
            open_timeout=10,
            close_timeout=2,
            compression=None,  # frames are small; deflate costs memory on both ends
        ) as ws:
            session = ClientSession(bridge.appid, bridge.stored_cid, bridge.acked, self.token)
            await ws.send(session.hello())
            try:
                async for text in ws:
                    for event in session.receive(text):
                        await self._handle(ws, session, event)
            finally:
                self._live = None

    async def _handle(
        self,
        ws: ClientConnection,
        session: ClientSession,
        event: Registered | Deliver | Refused | GatewayError,
    ) -> None:
        bridge = self.bridge
        if isinstance(event, Deliver):
            new = bridge.record(event.seq, event.id, event.message)
            ack = session.recorded(event.seq)
            if ack is not None:
                await ws.send(ack)
            if new:
                await bridge.dispatch(event.id, event.message)
        elif isinstance(event, Registered):
            bridge.registered(event.cid, event.acked)
            self._live = (ws, session)
            self.backoff.reset()
            self.status.state = "connected"
            self.status.attempts = 0
            self.status.connected_since = time.time()
            self.status.retry_at = None
            log.info("connected to the gateway", url=self.url, cid=event.cid)
        elif isinstance(event, Refused):
            log.warning("refused a frame from the gateway", reason=event.reason)
        else:
            log.warning("gateway error", code=event.code, message=event.message, fatal=event.fatal)
            if event.fatal:
                detail = {"errorCode": event.code, "errorMsg": event.message}
                bridge.registration_failed(json.dumps(detail, ensure_ascii=False))


def _describe_close(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "connection lost"
    reason = f": {frame.reason}" if frame.reason else ""
    return f"closed by the gateway ({frame.code}{reason})"

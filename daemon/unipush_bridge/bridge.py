"""The uni-push client on the desktop: listeners, notifications, clicks, the cid.

The bridge owns what uni's runtime owns on a phone. The link hands it recorded
pushes; the local API hands it app calls; it decides (with :mod:`delivery`) whether
a push becomes a receive event or a notification, and turns activations into click
events, keeping the latest click for the next subscriber when no app is listening.
"""

from __future__ import annotations

import asyncio
import shlex
import time
import webbrowser
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from . import delivery
from .notifier import NotificationRequest, Notifier, NotifyError
from .protocol import PushMessage
from .session import ReceiptEvent
from .store import DONE, HELD, PENDING, Store

log = structlog.get_logger(__name__)


#: A flood summary waits this long for the flood to settle before it is shown.
SUMMARY_DEBOUNCE_S = 1.0


@dataclass
class Flood:
    """Counts notifications shown in a sliding window; past ``threshold`` the rest are
    summed up, so a backlog of thousands does not bury the desktop."""

    threshold: int = 10
    window: float = 10.0
    shown: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        while self.shown and self.shown[0] <= now - self.window:
            self.shown.popleft()
        if self.threshold and len(self.shown) >= self.threshold:
            return False
        self.shown.append(now)
        return True


class Listener(Protocol):
    """A subscribed app connection; ``deliver`` must not block."""

    def deliver(self, event: dict[str, Any], msg_id: str | None = None) -> None:
        """``msg_id`` names a push, so a listener can drop one handed on twice
        (a daemon killed between handing it on and marking it done replays it)."""


class ApiError(Exception):
    """A failed local API call; the text is the reason after ``<api>:fail``."""


class Bridge:
    def __init__(
        self,
        *,
        store: Store,
        notifier: Notifier,
        appid: str,
        gateway_key: str,
        app_name: str,
        app_command: Sequence[str] = (),
        flood: Flood | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.appid = appid
        self.gateway_key = gateway_key
        self.app_name = app_name
        self.app_command = list(app_command)
        self.listeners: list[Listener] = []
        self.flood = flood or Flood()
        self._coalesced: list[dict[str, Any]] = []
        self._summary: asyncio.Task[None] | None = None
        cid, _ = store.identity(gateway_key, appid)
        self._cid = cid
        self._cid_ready = asyncio.Event()
        self._register_error: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_message_at: float | None = None
        #: Set by the link: tells the gateway a message was displayed or clicked.
        self.on_receipt: Callable[[str, str | None, ReceiptEvent], None] | None = None
        self.counters = {"received": 0, "duplicates": 0, "notified": 0, "coalesced": 0, "clicks": 0}

    # -- identity -----------------------------------------------------------------

    @property
    def cid(self) -> str | None:
        return self._cid if self._cid_ready.is_set() else None

    @property
    def acked(self) -> int:
        return self.store.identity(self.gateway_key, self.appid)[1]

    @property
    def stored_cid(self) -> str | None:
        return self._cid

    def registered(self, cid: str, acked: int) -> None:
        self.store.save_identity(self.gateway_key, self.appid, cid, acked)
        if cid != self._cid:
            log.info("registered a new cid", cid=cid)
        self._cid = cid
        self._register_error = None
        self._cid_ready.set()

    def registration_failed(self, reason: str) -> None:
        self._register_error = reason

    async def get_push_client_id(self, timeout: float | None) -> str:
        """Waits for registration, as uni's runtime queues calls until the cid is known."""
        if self._cid_ready.is_set() and self._cid:
            return self._cid
        try:
            await asyncio.wait_for(self._cid_ready.wait(), timeout)
        except TimeoutError:
            detail = self._register_error or f"no registration within {timeout} s"
            raise ApiError(f"register fail: {detail}") from None
        assert self._cid is not None
        return self._cid

    # -- pushes from the gateway ----------------------------------------------------

    def record_batch(self, pushes: list[tuple[int, str, PushMessage]]) -> list[bool]:
        """Durably record pushes before they are acknowledged; False marks a redelivery."""
        rows = [(seq, msg_id, m.to_dict()) for seq, msg_id, m in pushes]
        flags = self.store.record_batch(self.gateway_key, self.appid, rows)
        fresh = sum(flags)
        self.counters["received"] += fresh
        self.counters["duplicates"] += len(flags) - fresh
        if fresh:
            self.last_message_at = time.time()
        if fresh < len(flags):
            log.debug("dropped redelivered messages", count=len(flags) - fresh)
        return flags

    async def dispatch_batch(self, pushes: list[tuple[str, PushMessage]]) -> None:
        """Hand on recorded pushes in order, then mark them in one commit. A crash in
        between replays them; listeners drop what they already had by id."""
        states = [(msg_id, await self._dispatch(msg_id, message)) for msg_id, message in pushes]
        self.store.mark_many(states)

    async def _dispatch(self, msg_id: str, message: PushMessage) -> str:
        """Receive, notification or hold; returns the inbox state the push ends in."""
        data = delivery.event_data(message)
        if delivery.route(message, len(self.listeners)) is delivery.Route.RECEIVE:
            self._broadcast(delivery.receive_event(data), msg_id)
            return DONE
        if not self.flood.admit(time.monotonic()):
            return self._coalesce(msg_id, data)
        receipt = (msg_id, message.taskid)
        try:
            await self._notify(message.title, message.content, data, message.open_url, receipt)
        except NotifyError as exc:
            if not self.listeners:
                log.warning("notification failed, held for the next listener", reason=str(exc))
                return HELD
            log.warning("notification failed, delivered as receive", reason=str(exc))
            self._broadcast(delivery.receive_event(data), msg_id)
        return DONE

    def _coalesce(self, msg_id: str, data: dict[str, Any]) -> str:
        """Past the flood threshold: no banner of its own, but the message still
        reaches listeners now, or waits for the next one, and the summary counts it."""
        self.counters["coalesced"] += 1
        self._coalesced.append(data)
        if self._summary is None or self._summary.done():
            self._summary = asyncio.get_running_loop().create_task(self._summarize())
        if self.listeners:
            self._broadcast(delivery.receive_event(data), msg_id)
            return DONE
        return HELD

    async def _summarize(self) -> None:
        started = time.monotonic()
        while True:
            seen = len(self._coalesced)
            await asyncio.sleep(SUMMARY_DEBOUNCE_S)
            if len(self._coalesced) == seen or time.monotonic() - started >= self.flood.window:
                break
        batch, self._coalesced = self._coalesced, []
        latest = batch[-1]
        body = f"{len(batch)} more message{'s' if len(batch) > 1 else ''}: {latest['title']}"
        loop = asyncio.get_running_loop()

        def on_clicked() -> None:
            loop.call_soon(self._activated, latest, None, None)

        try:
            await self.notifier.show(
                NotificationRequest(title=self.app_name, body=body, on_clicked=on_clicked)
            )
        except NotifyError as exc:
            log.warning("flood summary not shown", reason=str(exc), coalesced=len(batch))

    async def wait_idle(self, timeout: float) -> None:
        """Give a pending flood summary and click work a moment before shutdown."""
        pending = [t for t in (self._summary, *self._tasks) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def replay_unfinished(self) -> None:
        """Hand on what a previous run recorded but did not finish (crash between)."""
        pending = self.store.unfinished(PENDING)
        await self.dispatch_batch([(i, PushMessage.parse(b)) for i, b in pending])

    # -- listeners ------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            return
        self.listeners.append(listener)
        held = self.store.unfinished(HELD)
        for msg_id, body in held:
            data = delivery.event_data(PushMessage.parse(body))
            listener.deliver(delivery.receive_event(data), msg_id)
        self.store.mark_many([(msg_id, DONE) for msg_id, _ in held])
        click = self.store.take_pending_click(self.appid)
        if click is not None:
            listener.deliver(delivery.click_event(click))

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def _broadcast(self, event: dict[str, Any], msg_id: str | None = None) -> None:
        for listener in list(self.listeners):
            listener.deliver(event, msg_id)

    # -- local notifications --------------------------------------------------------

    async def create_push_message(self, params: dict[str, Any]) -> dict[str, Any]:
        content = params.get("content")
        if content is None or content == "":
            raise ApiError("content is required")
        if not isinstance(content, str):
            raise ApiError("content must be a string")
        title = params.get("title")
        if title is None:
            title = self.app_name
        elif not isinstance(title, str):
            raise ApiError("title must be a string")
        data: dict[str, Any] = {"title": title, "content": content}
        if "payload" in params:
            data["payload"] = params["payload"]
        try:
            identifier = await self._notify(title, content, data, None, None)
        except NotifyError as exc:
            raise ApiError(str(exc)) from None
        return {"id": identifier}

    async def _notify(
        self,
        title: str,
        body: str,
        data: dict[str, Any],
        open_url: str | None,
        receipt: tuple[str, str | None] | None,
    ) -> str:
        """Show a notification; ``receipt`` (message id, taskid) marks a gateway push."""
        loop = asyncio.get_running_loop()

        def on_clicked() -> None:
            # Runs inside the D-Bus signal handler; hop to the loop of our own.
            loop.call_soon(self._activated, data, open_url, receipt)

        identifier = await self.notifier.show(
            NotificationRequest(title=title, body=body, on_clicked=on_clicked)
        )
        self.counters["notified"] += 1
        self._receipt(receipt, "display")
        return identifier

    def _receipt(self, receipt: tuple[str, str | None] | None, event: ReceiptEvent) -> None:
        if receipt is not None and self.on_receipt is not None:
            self.on_receipt(receipt[0], receipt[1], event)

    # -- clicks ---------------------------------------------------------------------

    def _activated(
        self,
        data: dict[str, Any],
        open_url: str | None,
        receipt: tuple[str, str | None] | None = None,
    ) -> None:
        self.counters["clicks"] += 1
        self._receipt(receipt, "click")
        if open_url:
            self._spawn(self._open_url(open_url))
            return
        if self.listeners:
            self._broadcast(delivery.click_event(data))
            return
        self.store.set_pending_click(self.appid, data)
        log.info("click kept for the next listener")
        if self.app_command:
            self._spawn(self._launch_app())

    async def _open_url(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            log.warning("refused to open a non-http(s) open_url")
            return
        await asyncio.to_thread(webbrowser.open, url)

    async def _launch_app(self) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(*self.app_command)
        except OSError as exc:
            log.warning(
                "app command failed to start", command=shlex.join(self.app_command), error=str(exc)
            )
            return
        log.info("launched the app command", pid=proc.pid)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

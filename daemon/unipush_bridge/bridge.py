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
import uuid
import webbrowser
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from . import delivery, localpush
from .icons import IconResolver
from .notifier import NotificationRequest, Notifier, NotifyError
from .protocol import PushMessage
from .session import ReceiptEvent
from .store import DONE, HELD, PENDING, Store

log = structlog.get_logger(__name__)


#: How long a batch waits for a listener that does not read before dropping it.
LISTENER_FLUSH_S = 30.0
#: Inbox state of a push handed to listeners: done once one of them holds it.
RECEIVED = "received"
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

    async def flushed(self) -> None:
        """Return once what was delivered is beyond loss if the daemon dies now."""

    def close(self) -> None: ...


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
        icons: IconResolver | None = None,
        sounds_dir: Path | None = None,
        history_size: int = 100,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.appid = appid
        self.gateway_key = gateway_key
        self.app_name = app_name
        self.app_command = list(app_command)
        self.listeners: list[Listener] = []
        self.flood = flood or Flood()
        self.icons = icons
        self.sounds_dir = sounds_dir
        self.history_size = history_size
        self._timers: dict[str, asyncio.TimerHandle] = {}
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
        # A receive is beyond loss only once a listener holds it; if every listener
        # stopped reading, the messages wait for the next one instead.
        received = DONE if await self._flush_listeners() else HELD
        self.store.mark_many([(i, received if s == RECEIVED else s) for i, s in states])

    async def _dispatch(self, msg_id: str, message: PushMessage) -> str:
        """Receive, notification or hold; returns the inbox state the push ends in."""
        data = delivery.event_data(message)
        if delivery.route(message, len(self.listeners)) is delivery.Route.RECEIVE:
            self._broadcast(delivery.receive_event(data), msg_id)
            return RECEIVED
        if not self.flood.admit(time.monotonic()):
            return self._coalesce(msg_id, data)
        receipt = (msg_id, message.taskid)
        request, channel = self._push_request(message)
        try:
            await self._notify(request, data, message.open_url, receipt, channel)
        except NotifyError as exc:
            if not self.listeners:
                log.warning("notification failed, held for the next listener", reason=str(exc))
                return HELD
            log.warning("notification failed, delivered as receive", reason=str(exc))
            self._broadcast(delivery.receive_event(data), msg_id)
            return RECEIVED
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
            return RECEIVED
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
        """Give a pending flood summary and click work a moment before shutdown.
        Scheduled notifications stay on disk and are armed again on the next start."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        pending = [t for t in (self._summary, *self._tasks) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def replay_unfinished(self) -> None:
        """Hand on what a previous run recorded but did not finish (crash between)."""
        pending = self.store.unfinished(PENDING)
        await self.dispatch_batch([(i, PushMessage.parse(b)) for i, b in pending])

    # -- listeners ------------------------------------------------------------------

    async def subscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            return
        self.listeners.append(listener)
        held = self.store.unfinished(HELD)
        for msg_id, body in held:
            data = delivery.event_data(PushMessage.parse(body))
            listener.deliver(delivery.receive_event(data), msg_id)
        if held and await self._flush_listeners([listener]):
            self.store.mark_many([(msg_id, DONE) for msg_id, _ in held])
        click = self.store.take_pending_click(self.appid)
        if click is not None:
            listener.deliver(delivery.click_event(click))

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    async def _flush_listeners(self, listeners: list[Listener] | None = None) -> bool:
        """Wait until listeners hold what they were given; one stuck longer than
        LISTENER_FLUSH_S (a stopped process) is disconnected so the rest go on.
        True when at least one listener holds everything (or none was asked)."""
        waiting = {
            asyncio.ensure_future(listener.flushed()): listener
            for listener in (listeners if listeners is not None else self.listeners)
        }
        if not waiting:
            return True
        done, stuck = await asyncio.wait(waiting, timeout=LISTENER_FLUSH_S)
        for task in stuck:
            task.cancel()
            log.warning("a listener stopped reading; disconnecting it")
            waiting[task].close()
            self.unsubscribe(waiting[task])
        return bool(done)

    def _broadcast(self, event: dict[str, Any], msg_id: str | None = None) -> None:
        for listener in list(self.listeners):
            listener.deliver(event, msg_id)

    # -- local notifications --------------------------------------------------------

    async def create_push_message(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            push = localpush.parse_local_push(params)
        except localpush.OptionError as exc:
            raise ApiError(str(exc)) from None
        self._channel(push.channel_id, strict=True)
        if push.delay > 0:
            # Kept on disk, so it fires once even if the daemon restarts before then.
            sched_id = uuid.uuid4().hex
            due = time.time() + push.delay
            self.store.schedule(sched_id, {**params, "delay": 0}, due)
            self._arm(sched_id, {**params, "delay": 0}, due)
            return {"id": sched_id, "scheduled_at": due}
        try:
            identifier = await self._show_local(push)
        except NotifyError as exc:
            raise ApiError(str(exc)) from None
        return {"id": identifier}

    async def _show_local(self, push: localpush.LocalPush) -> str:
        title = push.title if push.title is not None else self.app_name
        data: dict[str, Any] = {"title": title, "content": push.content}
        if push.payload is not None:
            data["payload"] = push.payload
        channel = self._channel(push.channel_id)
        request = NotificationRequest(
            title=title,
            body=push.content,
            urgency=channel.urgency,
            icon=await self.icons.resolve(push.icon) if self.icons else None,
            sound="none" if push.sound == "none" else self._sound(channel),
            cover=push.cover,
            category=push.category,
        )
        return await self._notify(request, data, None, None, channel.channel_id, push.when)

    def _push_request(self, message: PushMessage) -> tuple[NotificationRequest, str]:
        """A gateway push takes its channel's urgency and sound, as on Android."""
        extra = message.extra
        channel = self._channel(str(extra.get("channelId") or localpush.DEFAULT_CHANNEL))
        category = extra.get("category")
        request = NotificationRequest(
            title=message.title,
            body=message.content,
            urgency=channel.urgency,
            sound=self._sound(channel),
            category=category if isinstance(category, str) else None,
        )
        return request, channel.channel_id

    def _channel(self, channel_id: str, strict: bool = False) -> localpush.Channel:
        spec = self.store.channel(channel_id)
        if spec is not None:
            return localpush.parse_channel(spec)
        if channel_id == localpush.DEFAULT_CHANNEL or not strict:
            return localpush.DEFAULT
        raise ApiError(f"channel {channel_id} does not exist; create it with setPushChannel")

    def _sound(self, channel: localpush.Channel) -> str | Path:
        """A channel's soundName picks a file in the sounds directory, else the default."""
        if channel.sound_name and self.sounds_dir is not None:
            for suffix in ("", ".oga", ".ogg", ".wav", ".mp3"):
                candidate = self.sounds_dir / f"{channel.sound_name}{suffix}"
                if candidate.is_file():
                    return candidate
            log.warning(
                "channel sound not found", sound=channel.sound_name, sounds_dir=str(self.sounds_dir)
            )
        return "system"

    # -- channels, scheduled notifications, history --------------------------------

    def set_push_channel(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            channel = localpush.parse_channel(params)
        except localpush.OptionError as exc:
            raise ApiError(str(exc)) from None
        created = self.store.add_channel(channel.channel_id, channel.to_uni())
        return {"created": created}

    def get_all_channels(self) -> list[dict[str, Any]]:
        stored = self.store.channels()
        if not any(c["channelId"] == localpush.DEFAULT_CHANNEL for c in stored):
            stored.insert(0, localpush.DEFAULT.to_uni())
        return stored

    def restore_scheduled(self) -> None:
        for sched_id, params, due in self.store.scheduled():
            self._arm(sched_id, params, due)

    def _arm(self, sched_id: str, params: dict[str, Any], due: float) -> None:
        delay = max(0.0, due - time.time())
        handle = asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(self._fire(sched_id, params))
        )
        self._timers[sched_id] = handle

    async def _fire(self, sched_id: str, params: dict[str, Any]) -> None:
        self._timers.pop(sched_id, None)
        try:
            await self._show_local(localpush.parse_local_push(params))
        except (NotifyError, ApiError, localpush.OptionError) as exc:
            log.warning("scheduled notification not shown", reason=str(exc))
        finally:
            self.store.unschedule(sched_id)  # fires once, shown or not

    def history(self, limit: int) -> list[dict[str, Any]]:
        return self.store.history(limit)

    async def _notify(
        self,
        request: NotificationRequest,
        data: dict[str, Any],
        open_url: str | None,
        receipt: tuple[str, str | None] | None,
        channel: str | None = None,
        when: int | None = None,
    ) -> str:
        """Show a notification; ``receipt`` (message id, taskid) marks a gateway push."""
        loop = asyncio.get_running_loop()
        entry = uuid.uuid4().hex

        def on_clicked() -> None:
            # Runs inside the D-Bus signal handler; hop to the loop of our own.
            loop.call_soon(self._activated, data, open_url, receipt, entry)

        identifier = await self.notifier.show(replace(request, on_clicked=on_clicked))
        self.counters["notified"] += 1
        self._receipt(receipt, "display")
        shown = {**data, "when": when} if when is not None else data
        self.store.remember_shown(
            entry,
            "push" if receipt else "local",
            channel,
            request.title,
            request.body,
            shown,
            self.history_size,
        )
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
        entry: str | None = None,
    ) -> None:
        self.counters["clicks"] += 1
        self._receipt(receipt, "click")
        if entry is not None:
            self.store.mark_clicked(entry)
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

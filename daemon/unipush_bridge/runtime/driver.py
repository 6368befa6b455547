"""Carries out the core's decisions on asyncio: the store, the notifier, listeners, timers.

:mod:`.core` decides; this module does what it says, in order, and reports the
results back (a notification shown or not, listeners that hold their events or are
stuck, a click, the clock). The link and the local API server talk to a
:class:`Driver` through the small protocols they declare themselves
(:class:`.link.LinkPeer`, :class:`.localapi.Api`), never to the core directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
import uuid
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from ..errors import ApiFail, NotifyError, NotifyTimedOut
from ..sqlitedb import StoreBroken, StoreFull, store_error
from ..wire.gateway import PushMessage
from . import core
from .changes import Changes
from .core import Action, Core, ReceiptEvent, State
from .icons import IconResolver
from .localpush import Channel, parse_channel, well_formed
from .notifier import NotificationRequest, Notifier
from .store import Store

log = structlog.get_logger(__name__)

#: How long a listener may take to hold what it was sent before it counts as stuck.
HOLD_TIMEOUT_S = 30.0
#: Batches handed to listeners and not yet held before the link waits (back-pressure).
MAX_HOLDS = 4
#: While notifications are scheduled (or held pushes wait for their ttl), the timer
#: looks at the clocks at least this often, so a step of the wall clock is noticed
#: (its waits run on the monotonic clock).
CLOCK_CHECK_S = 5.0
#: Wall-clock time that drifts from monotonic time by more than this has been stepped.
CLOCK_STEP_S = 1.0
#: With a quiet hours schedule, the timer looks at the local time at least this often,
#: so a step of the clock (or a change of time zone or DST) moves an edge by at most this.
QUIET_CHECK_S = 60.0
#: The link's stops at max_held_mib are logged (warning, then info) at most this often.
HELD_FULL_LOG_EVERY_S = 60.0


def local_seconds(wall: float) -> float:
    """Seconds after local midnight at ``wall`` (time zone and DST as the system has them)."""
    t = time.localtime(wall)
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + (wall % 1.0)


class Listener(Protocol):
    """A subscribed app connection; ``deliver`` must not block."""

    def deliver(self, event: dict[str, Any], push_id: str | None = None) -> None: ...

    async def held(self, push_ids: tuple[str, ...] = ()) -> bool:
        """True once the app has these events (it acknowledged them; an old client:
        they are in its socket buffer); False if the connection ended first."""
        ...

    def close(self) -> None: ...

    def __hash__(self) -> int: ...


ReceiptSink = Callable[[str, str | None, ReceiptEvent], None]


@dataclass(frozen=True)
class Media:
    """Where uni's icon and sound names are found on this machine (settings)."""

    icons: IconResolver | None = None
    sounds_dir: Path | None = None
    history_size: int = 100


class Driver:
    def __init__(
        self,
        *,
        core: Core,
        store: Store,
        notifier: Notifier,
        appid: str,
        gateway_key: str,
        media: Media = Media(),
        receipts: ReceiptSink | None = None,
        hold_timeout: float = HOLD_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        local: Callable[[float], float] = local_seconds,
    ) -> None:
        self.core = core
        self.store = store
        self.notifier = notifier
        notifier.on_back = self._server_back
        self.appid = appid
        self.gateway_key = gateway_key
        self.media = media
        self.hold_timeout = hold_timeout
        self._receipts = receipts
        self._clock = clock
        self._monotonic = monotonic
        self._local = local
        self._clocks: tuple[float, float] | None = None
        cid, _ = store.identity(gateway_key, appid)
        self._cid = cid
        self._cid_ready = asyncio.Event()
        self._register_error: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._holds: set[asyncio.Task[None]] = set()
        #: Shows that timed out, waiting for a late answer (never awaited by ``stop``).
        self._late: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        #: Set while held pushes are under the core's bound (``hand_on`` waits on it).
        self._room = asyncio.Event()
        self._room.set()
        self._full_logged = -HELD_FULL_LOG_EVERY_S
        self._clock_task: asyncio.Task[None] | None = None
        #: One thread for fsyncs, so they never queue behind other thread work.
        self._fsync = ThreadPoolExecutor(1, thread_name_prefix="store-fsync")
        self.last_message_at: float | None = None
        #: What a watcher's status call waits on (the tray): bumped after every run of
        #: actions (history, quiet hours, listeners), a registration, an unsubscribe, a
        #: reload, and a run that moved _watched() with no action (quiet hours beginning
        #: by schedule, a subscribe with nothing held).
        self.changes = Changes()
        self._watched_at_bump = self._watched()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Take over what the last run left: replay what it recorded but never handed
        on, keep what was held, arm the scheduled notifications."""
        unfinished = [
            (msg_id, PushMessage.parse(body), State(state))
            for state in (State.PENDING.value, State.HELD.value)
            for msg_id, body in self.store.unfinished(state)
        ]
        channels = [parse_channel(spec) for spec in self.store.channels()]
        actions = self.core.restore(
            unfinished,
            channels=channels,
            scheduled=self.store.scheduled(),
            pending_click=self.store.pending_click(self.appid),
            pending_click_id=self.store.pending_click_id(self.appid),
            quiet=self.store.quiet(),
            local=self._local_now(),
            now=self._monotonic(),
            waiting=self.store.waiting_for_server(),
        )
        await self.run(actions)
        if self.notifier.available:
            # Held by the last run for want of a server, and one is there now (the
            # notifier's start found it before this restore: no on_back will come).
            await self.run(self.core.server_back(self._monotonic()))
        self._clock_task = asyncio.get_running_loop().create_task(self._keep_time())

    async def stop(self, timeout: float) -> None:
        """Give a pending flood summary and click work a moment; scheduled
        notifications stay on disk and are armed again on the next start."""
        if self._clock_task is not None:
            self._clock_task.cancel()
        if self.notifier.on_back == self._server_back:
            self.notifier.on_back = None  # a server found now would show after the store
        for task in self._late:
            task.cancel()  # a hung server may never answer
        pending = [t for t in (*self._tasks, *self._holds) if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        self._fsync.shutdown(wait=True)

    def reconfigure(self, config: core.Config, media: Media) -> None:
        """SIGHUP: settings that change live."""
        self.core.reconfigure(config)
        self.media = media
        if not self.core.held_full():
            self._room.set()  # a higher max_held_mib
        self._run_now(self.core.local_time(self._local_now()))  # a new quiet schedule
        self._wake.set()
        self._bump()  # the quiet schedule a watcher shows may be another

    # -- the link's side (LinkPeer) ------------------------------------------------------

    def identity(self) -> tuple[str | None, int]:
        return self.store.identity(self.gateway_key, self.appid)

    def secret(self) -> str:
        return self.store.secret(self.gateway_key, self.appid)

    def registered(self, cid: str, acked: int) -> None:
        self.store.save_identity(self.gateway_key, self.appid, cid, acked)
        if cid != self._cid:
            log.info("registered a new cid", cid=cid)
        self._cid = cid
        self._register_error = None
        self._cid_ready.set()
        self._bump()

    def registration_failed(self, reason: str) -> None:
        self._register_error = reason

    def record(
        self, pushes: Sequence[tuple[int, str, PushMessage]]
    ) -> list[tuple[str, PushMessage]]:
        """Commit pushes (and the cursor) before they are acknowledged; returns the new
        ones, dropping redeliveries by message id."""
        rows = [(seq, msg_id, m.to_dict()) for seq, msg_id, m in pushes]
        flags = self.store.record_batch(self.gateway_key, self.appid, rows)
        fresh = [(msg_id, m) for (_, msg_id, m), new in zip(pushes, flags, strict=True) if new]
        if len(fresh) < len(flags):
            log.debug("dropped redelivered messages", count=len(flags) - len(fresh))
        return fresh

    async def durable(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._fsync, self.store.sync)
        except OSError as exc:  # ENOSPC from the fsync: "state dir full: <dir>"
            raise store_error(self.store.path, exc) from exc

    async def hand_on(self, fresh: list[tuple[str, PushMessage]], duplicates: int = 0) -> None:
        """Route what was just recorded. Waits while too many batches are out with
        listeners that have not held them yet, so a slow app slows the link down."""
        if fresh:
            self.last_message_at = self._clock()
        # The flood's window and summary are durations: the monotonic clock.
        await self.run(self.core.recorded(fresh, duplicates, self._monotonic(), self._local_now()))
        while len(self._holds) >= MAX_HOLDS:
            await asyncio.wait(self._holds, return_when=asyncio.FIRST_COMPLETED)
        await self._until_room()

    async def _until_room(self) -> None:
        """While held pushes are at their bound (``max_held_mib``), the link takes no
        more: it reads nothing (TCP pushes the gateway back) and acknowledges nothing
        it did not record, so the gateway keeps them. It goes on once a listener took
        held ones, their ttl ended, or a reload raised the bound. A link that drops
        meanwhile (no pong read) stays down until then, and resumes from its cursor."""
        if not self.core.held_full():
            return
        ledger = self.core.held_ledger
        # With a listener taking rounds while the gateway floods, the link stops and
        # goes on every round (tens of times a second): the log says so once a minute.
        now = self._monotonic()
        loud = now - self._full_logged >= HELD_FULL_LOG_EVERY_S
        if loud:
            self._full_logged = now
        (log.warning if loud else log.debug)(
            "held pushes reached max_held_mib; not taking more for now",
            held=ledger.count,
            held_bytes=ledger.memory(),
            max_bytes=self.core.config.max_held_bytes,
        )
        while self.core.held_full():
            self._room.clear()
            await self._room.wait()
        (log.info if loud else log.debug)(
            "held pushes are under max_held_mib again; taking pushes", held=ledger.count
        )

    # -- the local API's side (Api) -----------------------------------------------------------

    @property
    def cid(self) -> str | None:
        return self._cid if self._cid_ready.is_set() else None

    async def get_push_client_id(self, timeout: float | None) -> str:
        """Waits for registration, as uni's runtime queues calls until the cid is known."""
        if self._cid_ready.is_set() and self._cid:
            return self._cid
        try:
            await asyncio.wait_for(self._cid_ready.wait(), timeout)
        except TimeoutError:
            detail = self._register_error or f"no registration within {timeout} s"
            raise ApiFail(f"register fail: {detail}") from None
        assert self._cid is not None
        return self._cid

    async def subscribe(self, listener: Listener) -> None:
        await self.run(self.core.subscribed(listener, self._clock()))

    def unsubscribe(self, listener: Listener) -> None:
        self._run_now(self.core.unsubscribed(listener))
        self._bump()

    @property
    def listeners(self) -> int:
        return len(self.core.listeners)

    async def create_push_message(self, params: dict[str, Any]) -> dict[str, Any]:
        # A step of the wall clock since the timer last looked (it does not look while
        # nothing is scheduled) is taken now, before this call's due time is set from
        # the stepped clock: later, it would be applied to this one too.
        self._check_clocks()
        actions = self.core.create_push_message(
            well_formed(params), self._clock(), self._local_now()
        )
        answer: dict[str, Any] = {}
        for action in actions:
            try:
                if isinstance(action, core.Show):
                    answer["notification_id"] = await self._show(action)
                else:
                    if isinstance(action, core.Schedule):
                        answer.update(notification_id=action.sched_id, scheduled_at=action.due)
                    elif isinstance(action, core.Remember):  # held back by quiet hours
                        answer.update(notification_id=action.entry, quiet=True)
                    await self.run([action])
            except (NotifyError, StoreBroken, StoreFull) as exc:
                # "createPushMessage:fail state dir full: <dir> ...", not an internal error.
                raise ApiFail(str(exc)) from None
        return answer

    def set_push_channel(self, params: dict[str, Any]) -> dict[str, Any]:
        created, actions = self.core.set_push_channel(params)
        self._run_now(actions)
        return {"created": created}

    def all_channels(self) -> list[Channel]:
        return self.core.all_channels()

    def history(self, limit: int) -> list[dict[str, Any]]:
        return self.store.history(limit)

    async def click_history(self, entry_id: str) -> None:
        """clickHistory: the tray chose a history entry; raises ApiFail if it is gone."""
        found = [e for e in self.store.history(self.media.history_size) if e["id"] == entry_id]
        if not found:
            raise ApiFail(f"push_id {entry_id!r} is not in the history")
        await self.run(self.core.history_clicked(entry_id, found[0]["data"], found[0]["open_url"]))

    async def set_quiet_hours(self, on: bool | None) -> dict[str, Any]:
        """The toggle: on, off, or None to follow the schedule (kept on disk)."""
        await self.run(self.core.set_quiet(on, self._local_now()))
        return self.get_quiet_hours()

    def get_quiet_hours(self) -> dict[str, Any]:
        return self.core.quiet_status()

    def _local_now(self) -> float:
        return self._local(self._clock())

    def inbox(self) -> dict[str, int]:
        """What is recorded and not yet at a listener or on the screen."""
        unfinished = self.core.count(State.PENDING, State.RECEIVING, State.SHOWING, State.HELD)
        waiting = sum(core.RETRY_KEY in params for params, _ in self.core.scheduled.values())
        return {
            "held_for_listener": self.core.count(State.HELD),
            # At max_held_mib: the link takes no more pushes until held ones are taken.
            "held_full": self.core.held_full(),
            "backlog": unfinished,
            "scheduled": len(self.core.scheduled),
            # Delayed notifications due already, tried again until a server takes them.
            "waiting_for_notification_server": waiting,
        }

    # -- carrying out actions ------------------------------------------------------------

    async def run(self, actions: Sequence[Action]) -> None:
        """Do what the core said, in order; results go back to the core at once.

        A store write that fails (a full disk) stops none of the rest: the core has
        moved on, and the pushes of the actions left undone would wait in its memory
        for a restart. The first failure is raised once all is done."""
        self._wake.set()  # deadlines may have moved
        try:
            await self._carry_out(actions)
        finally:
            if not self.core.held_full():
                self._room.set()  # a link waiting at the bound goes on
            if actions or self._watched() != self._watched_at_bump:
                self._bump()  # what a watcher shows may have moved

    def _bump(self) -> None:
        self._watched_at_bump = self._watched()
        self.changes.bump()

    def _watched(self) -> tuple[bool, int]:
        """What a watcher shows that moves with no action to carry out: quiet hours that
        began by schedule, a listener that subscribed with nothing held for it."""
        return self.core.quiet, len(self.core.listeners)

    async def _carry_out(self, actions: Sequence[Action]) -> None:
        failed: list[StoreBroken | StoreFull] = []
        states: list[tuple[str, str]] = []
        waiting: set[str] = set()  # as of the last write of each id in ``states``
        for action in actions:
            if isinstance(action, core.Persist):
                for msg_id, state in action.states:
                    states.append((msg_id, state.value))
                    if msg_id in action.waiting:
                        waiting.add(msg_id)
                    else:
                        waiting.discard(msg_id)
                continue
            if states:  # consecutive state writes are one commit
                self._mark(states, waiting, failed)
                states, waiting = [], set()
            try:
                if isinstance(action, core.Show):
                    with contextlib.suppress(NotifyError):  # the core was told and decided
                        await self._show(action)
                elif isinstance(action, core.AwaitHold):
                    self._hold(action)
                else:
                    self._do(action)
            except (StoreBroken, StoreFull) as exc:
                failed.append(exc)
        if states:
            self._mark(states, waiting, failed)
        if failed:
            raise failed[0]

    def _mark(
        self,
        states: list[tuple[str, str]],
        waiting: set[str],
        failed: list[StoreBroken | StoreFull],
    ) -> None:
        try:
            self.store.mark_many(states, waiting)
        except (StoreBroken, StoreFull) as exc:
            failed.append(exc)

    def _run_now(self, actions: Sequence[Action]) -> None:
        """Actions that need no waiting (no Show), from synchronous callers; none at all
        (the common case: an unsubscribe, a channel that exists) starts no task."""
        if actions:
            self._spawn(self.run(actions))

    def _do(self, action: Action) -> None:
        match action:
            case core.Send(listener, event, push_id):
                listener.deliver(event, push_id)  # type: ignore[attr-defined]
            case core.Disconnect(listener):
                listener.close()  # type: ignore[attr-defined]
            case core.SavePendingClick(data, click_id):
                if data is None:
                    self.store.clear_pending_click(self.appid)
                else:
                    self.store.set_pending_click(self.appid, data, click_id)
            case core.OpenUrl(url):
                self._spawn(asyncio.to_thread(webbrowser.open, url))
            case core.Launch(argv):
                self._spawn(self._launch(argv))
            case core.Receipt(msg_id, taskid, event):
                if self._receipts is not None:
                    self._receipts(msg_id, taskid, event)
            case core.Remember(entry, source, channel, title, content, data, not_shown, url):
                self.store.remember_shown(
                    entry,
                    source,
                    channel,
                    title,
                    content,
                    data,
                    self.media.history_size,
                    not_shown,
                    url,
                )
            case core.MarkClicked(entry):
                self.store.mark_clicked(entry)
            case core.SaveChannel(channel):
                self.store.add_channel(channel.channel_id, channel.to_uni())
            case core.Schedule(sched_id, params, due):
                self.store.schedule(sched_id, params, due)
            case core.Unschedule(sched_id):
                self.store.unschedule(sched_id)
            case core.SaveQuiet(override, unread):
                self.store.save_quiet(override, unread)
            case core.Warn(text, detail):
                log.warning(text, **detail)
            case core.Close(identifier):
                self._spawn(self.notifier.close(identifier))
            case _:
                raise AssertionError(f"no handler for {action!r}")

    async def _show(self, action: core.Show) -> str:
        """Show one notification and tell the core how it went; raises NotifyError."""
        loop = asyncio.get_running_loop()
        ticket = action.ticket

        def on_clicked() -> None:
            # Runs inside the D-Bus signal handler; hop onto the loop first.
            loop.call_soon(lambda: self._spawn(self.run(self.core.activated(ticket))))

        try:
            request = await self._request(action.notice)
            identifier = await self.notifier.show(replace(request, on_clicked=on_clicked))
        except NotifyTimedOut as exc:
            await self.run(self.core.shown(ticket, False, str(exc), maybe=True))
            self._wait_late(ticket, exc.late)
            raise
        except NotifyError as exc:
            await self.run(self.core.shown(ticket, False, str(exc)))
            raise
        await self.run(self.core.shown(ticket, True))
        return identifier

    async def _request(self, notice: core.Notice) -> NotificationRequest:
        icons = self.media.icons
        return NotificationRequest(
            title=notice.title,
            body=notice.body,
            urgency=notice.urgency,
            icon=await icons.resolve(notice.icon) if icons and notice.icon else None,
            sound=self._sound(notice.sound),
            cover=notice.cover,
            category=notice.category,
        )

    def _sound(self, name: str) -> str | Path:
        """A channel's soundName picks a file in the sounds directory, else the default."""
        if name in ("system", "none"):
            return name
        sounds_dir = self.media.sounds_dir
        if sounds_dir is not None:
            for suffix in ("", ".oga", ".ogg", ".wav", ".mp3"):
                candidate = sounds_dir / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
        log.warning("channel sound not found", sound=name, sounds_dir=str(sounds_dir))
        return "system"

    def _wait_late(self, ticket: str, late: Awaitable[str | None]) -> None:
        """A show that timed out may still be answered (a hung server that runs
        again): the core hears how it ended."""

        async def wait() -> None:
            await self.run(self.core.shown_late(ticket, await late))

        task = asyncio.get_running_loop().create_task(wait())
        self._late.add(task)
        task.add_done_callback(self._late.discard)
        task.add_done_callback(self._done)

    def _hold(self, action: core.AwaitHold) -> None:
        task = asyncio.get_running_loop().create_task(self._await_hold(action))
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)

    async def _await_hold(self, action: core.AwaitHold) -> None:
        """Report the batch held as soon as one listener holds it (the link, held back
        by MAX_HOLDS, goes on at once), then watch the other listeners apart: a stuck
        one delays nobody else's events, and is reported stuck at hold_timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hold_timeout
        waiting: dict[asyncio.Future[bool], Any] = {
            asyncio.ensure_future(listener.held(action.push_ids)): listener  # type: ignore[attr-defined]
            for listener in action.listeners
        }
        holders: list[Any] = []
        pending = set(waiting)
        while pending and not holders:
            done, pending = await asyncio.wait(
                pending,
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                break  # the deadline passed
            holders += [waiting[f] for f in done if not f.cancelled() and f.result()]
        if holders and pending:
            self._spawn(self._watch_stuck(action.token, {f: waiting[f] for f in pending}, deadline))
            pending = set()
        for future in pending:
            future.cancel()
        stuck = [waiting[f] for f in pending]
        await self.run(self.core.held(action.token, holders, stuck, self._monotonic()))

    async def _watch_stuck(
        self, token: int, waiting: dict[asyncio.Future[bool], Any], deadline: float
    ) -> None:
        """The listeners of a batch already held elsewhere: those that do not hold it
        by the deadline are stuck (the core disconnects them; the batch is not theirs)."""
        loop = asyncio.get_running_loop()
        _, late = await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        for future in late:
            future.cancel()
        if late:
            await self.run(self.core.held(token, [], [waiting[f] for f in late], self._monotonic()))

    async def _keep_time(self) -> None:
        """The core's clock: wake at its next deadline (or when actions moved it).

        Scheduled notifications are due at a wall-clock time (it survives a restart),
        but the wait runs on the monotonic clock; so the clocks are compared at least
        every CLOCK_CHECK_S. A step forward (or a suspend) fires what is now due; a
        step back moves the due times back with it, so nothing waits the interval
        twice, and nothing fires early (issue 10 item 10). The flood's window and its
        summary are durations, on the monotonic clock alone: a step changes neither."""
        while True:
            self._check_clocks()
            waits = []
            if (due := self.core.next_deadline()) is not None:  # wall clock
                waits.append(due - self._clock())
            if (summary := self.core.summary_due()) is not None:  # monotonic
                waits.append(summary - self._monotonic())
            if (edge := self.core.quiet_edge(self._local_now())) is not None:  # local time
                waits.append(min(edge, QUIET_CHECK_S))
            timeout = max(0.0, min(waits)) if waits else None
            if due is not None:  # a wall-clock deadline: watch for the clock's steps
                timeout = CLOCK_CHECK_S if timeout is None else min(timeout, CLOCK_CHECK_S)
            self._wake.clear()
            if timeout is None or timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                    continue  # something changed: look at the deadline again
                except TimeoutError:
                    pass
            self._check_clocks()
            try:
                await self.run(self.core.tick(self._clock(), self._monotonic(), self._local_now()))
            except Exception:
                log.exception("timer work failed")

    def _check_clocks(self) -> None:
        wall, mono = self._clock(), self._monotonic()
        if self._clocks is not None:
            last_wall, last_mono = self._clocks
            step = (wall - last_wall) - (mono - last_mono)
            if step < -CLOCK_STEP_S and self.core.scheduled:
                self._rearm(step)
        self._clocks = (wall, mono)

    def _rearm(self, step: float) -> None:
        """The wall clock went back by ``-step`` s: each scheduled notification keeps
        the moment it was due at in real time (kept on disk for the next start)."""
        for action in self.core.wall_clock_stepped(step):
            self._do(action)  # at once: the tick that follows must see the new rows
        log.info(
            "the wall clock went back; scheduled notifications keep their time",
            seconds=round(-step, 3),
            scheduled=len(self.core.scheduled),
        )

    async def _launch(self, argv: tuple[str, ...]) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(*argv)
        except OSError as exc:
            log.warning("app command failed to start", command=shlex.join(argv), error=str(exc))
            return
        log.info("launched the app command", pid=proc.pid)

    def _server_back(self) -> None:
        """What waited only for a notification server is shown now it is back: in a
        task of its own, as the notifier calls this from inside a probe (even one a
        show is waiting for)."""

        async def show_unshown() -> None:
            await self.run(self.core.server_back(self._monotonic()))

        self._spawn(show_unshown())

    def _spawn(self, work: Coroutine[Any, Any, Any] | Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", error=repr(task.exception()))


def new_id() -> str:
    return uuid.uuid4().hex

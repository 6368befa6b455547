"""Native notifications through desktop-notifier, made safe for a long-running daemon.

desktop-notifier never raises from ``send()``, blocks forever on a hung server and
opens a new bus connection per failed send. This adapter bounds every call with a
timeout, turns a silent failure into :class:`NotifyError` naming the cause, says once
per outage that no server is there (and once when one is back) and does not hammer
the bus meanwhile. On Linux it follows the server itself (docs/notification-servers.md):
a restarted or replaced server voids every id held and is asked again what it can do.

uni's ``cover`` replaces the app's previous notification, whatever kind it was, so
the adapter remembers the last one it showed, each show recording its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ..errors import NO_SERVER, NotifyError, NotifyTimedOut
from .dbustext import dbus_text

if TYPE_CHECKING:
    from .dbus_backend import BridgeDBusBackend, NotifyCall

__all__ = [
    "MAX_BODY",
    "MAX_BODY_LINES",
    "MAX_TITLE",
    "NO_SERVER",
    "DesktopNotifierBackend",
    "NotificationRequest",
    "Notifier",
    "NotifyError",
    "clip",
    "dbus_text",
    "render_text",
]

log = structlog.get_logger(__name__)

#: Longest title and body we hand to the server; longer text is cut with an ellipsis
#: (the full text stays in the event data and the history). 500 characters in at most
#: 10 lines draw a popup that fits an 800-pixel screen on every server of the matrix:
#: notification-daemon and LXQt grow a popup to any height (issue 11 item 8).
MAX_TITLE = 256
MAX_BODY = 500
MAX_BODY_LINES = 10

#: ``sound: "system"`` as a name of the freedesktop sound naming spec (a server with
#: the ``sound`` capability plays its theme's sound for it).
SYSTEM_SOUND = "message-new-instant"
#: How long a critical notification stays, in ms: uni's importance 4 is above normal
#: but never one that does not expire (servers differ: dunst and xfce keep critical
#: until closed when given -1, notification-daemon and LXQt drop it after 5 to 10 s).
CRITICAL_EXPIRE_MS = 30_000


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    title: str
    body: str
    on_clicked: Callable[[], None] | None = None
    #: low | normal | critical (a channel's importance 2 / 3 / 4)
    urgency: str = "normal"
    #: An image file to show, absolute (the bridge resolves uni's icon forms).
    icon: Path | None = None
    #: "system" (the server's default sound), "none", or an absolute sound file.
    sound: str | Path = "system"
    #: Replace this app's previous notification (of any kind) in place instead of stacking.
    cover: bool = False
    category: str | None = None


class _ServerChanged(NotifyError):
    """The server instance changed while a notification was on its way to it."""


class Notifier(Protocol):
    """What the bridge needs from a notification backend, on every platform."""

    #: Called when a notification server answers again after none did.
    on_back: Callable[[], None] | None

    @property
    def available(self) -> bool: ...

    async def start(self) -> None: ...

    async def show(self, request: NotificationRequest) -> str: ...

    async def close(self, identifier: str) -> None: ...


def clip(text: str, limit: int, lines: int | None = None) -> str:
    """Cut ``text`` to at most ``limit`` characters (and ``lines`` lines), marking the
    cut with an ellipsis."""
    if lines is not None and text.count("\n") >= lines:
        text = "\n".join(text.split("\n")[:lines])
        text = text[: limit - 1] + "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(title: str, body: str, markup: bool) -> tuple[str, str]:
    """Cut to the limits and, for markup-rendering servers, escape the body.

    Every common Linux server (dunst, GNOME, KDE, xfce) renders the body as markup,
    so text from the network must not be able to inject tags.
    """
    title = clip(dbus_text(title), MAX_TITLE)
    body = clip(dbus_text(body), MAX_BODY, MAX_BODY_LINES)
    if markup:
        body = html.escape(body, quote=False)
    return title, body


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class DesktopNotifierBackend:
    """Adapter over ``desktop_notifier.DesktopNotifier`` (D-Bus, macOS, WinRT)."""

    def __init__(
        self,
        app_name: str,
        timeout: float = 5.0,
        reprobe_after: float = 30.0,
        desktop_entry: str | None = None,
    ) -> None:
        from desktop_notifier import DesktopNotifier

        self._dn = DesktopNotifier(app_name=app_name, app_icon=None)
        #: On Linux, our extension of the D-Bus backend (cover, hints, server changes).
        self._linux: BridgeDBusBackend | None = None
        #: The last notification shown, which a cover replaces: its D-Bus id on Linux,
        #: its identifier elsewhere (macOS and Windows replace by identifier).
        self._last_platform_id: int | None = None
        self._last_identifier: str | None = None
        #: Shows begun, and which of them the last ids above are from: the previous
        #: notification is the one asked for last, not the one the server answered last.
        self._begun = 0
        self._last_from = 0
        #: The show asked for last, until it is answered: a cover waits for it.
        self._latest: asyncio.Future[None] | None = None
        #: The ``desktop-entry`` hint (GNOME and KDE group and badge by it).
        self.desktop_entry = desktop_entry
        if sys.platform.startswith("linux"):
            from .dbus_backend import BridgeDBusBackend

            self._linux = BridgeDBusBackend(app_name, None)
            self._linux.on_server_change = self._server_changed
            self._linux.on_closed_id = self._closed
            self._dn._backend = self._linux
        self.timeout = timeout
        self._reprobe_after = reprobe_after
        self._available = False
        self._probed_at = float("-inf")
        self._said_unavailable = False
        self._markup = sys.platform.startswith("linux")
        self._tasks: set[asyncio.Task[None]] = set()
        #: Sends that timed out and may still be answered (a hung server that runs again).
        self._late: set[asyncio.Task[str | None]] = set()
        self.on_back: Callable[[], None] | None = None
        #: The probe a server's arrival started: a show meanwhile waits for its answer.
        self._probing: asyncio.Task[None] | None = None
        #: While no server answers and someone waits for one (``on_back``): the next probe.
        self._reprobe: asyncio.TimerHandle | None = None

    @property
    def available(self) -> bool:
        return self._available

    def describe(self) -> dict[str, Any]:
        """For status: the server in use and how a click works on it (``none``: the
        server has no actions, so no click can come)."""
        if not self._available:
            return {"available": False}
        if self._linux is None or self._linux.server is None:
            return {"available": True, "click": "body"}
        return {"available": True, **self._linux.server.as_dict()}

    def set_timeout(self, timeout: float) -> None:
        """SIGHUP: a new bound for calls to the server, from the next call on."""
        self.timeout = timeout

    async def start(self) -> None:
        await self._probe()

    async def stop(self) -> None:
        if self._reprobe is not None:
            self._reprobe.cancel()
        for task in [*self._tasks, *self._late]:
            task.cancel()
        if self._linux is not None:
            await self._linux.close()

    async def _watch(self) -> None:
        """Follow the server's comings and goings; without a bus, the probes' back-off
        is all there is."""
        if self._linux is None or self._linux.watch.watching:
            return
        try:
            await asyncio.wait_for(self._linux.watch.start(), self.timeout)
        except Exception as exc:
            log.debug("cannot watch the notification server's name", reason=_reason(exc))

    def _server_changed(self, present: bool) -> None:
        """The owner of org.freedesktop.Notifications changed: the ids we held belong to
        a server instance that has gone (ids start at 1 again), so cover starts anew."""
        self._last_platform_id = None
        if not present:
            self._set_unavailable("the notification server left the bus")
            return
        self._probed_at = float("-inf")
        self._probe_now()

    def _probe_now(self) -> None:
        """Probe in a task of its own; a show that comes meanwhile waits for its answer."""
        task = asyncio.get_running_loop().create_task(self._probe())
        self._probing = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _probe_later(self) -> None:
        """While no server answers and pushes may wait for one (``on_back`` is set), ask
        again after the re-probe interval: a server that hung and recovers keeps its
        name on the bus, so no NameOwnerChanged would say it is back, and without a new
        notification to try nothing else would."""
        if self.on_back is None or self._reprobe is not None:
            return
        self._reprobe = asyncio.get_running_loop().call_later(
            self._reprobe_after, self._reprobe_due
        )

    def _reprobe_due(self) -> None:
        self._reprobe = None
        self._probe_if_none_answers()

    def _probe_if_none_answers(self) -> None:
        """Probe now while no server is taken to answer, unless a probe runs already."""
        if not self._available and (self._probing is None or self._probing.done()):
            self._probe_now()

    def _closed(self, platform_id: int) -> None:
        """A closed notification is not there to replace (and its id may be given out
        again by some servers)."""
        if platform_id == self._last_platform_id:
            self._last_platform_id = None

    def _set_unavailable(self, reason: str) -> None:
        self._available = False
        self._probed_at = time.monotonic()
        self._probe_later()
        if not self._said_unavailable:
            self._said_unavailable = True
            log.warning(
                "no notification server; notifications are off, receive events still flow",
                reason=reason,
            )

    def _linux_gone(self, call: NotifyCall) -> bool:
        from .dbus_backend import server_gone

        return self._linux is not None and (
            server_gone(call.error) or not self._linux.bus_connected
        )

    async def _probe(self) -> None:
        self._probed_at = time.monotonic()
        await self._watch()
        detail: dict[str, Any] = {}
        try:
            if self._linux is not None:
                # Ask the server itself, every time: never a cached answer.
                info = await asyncio.wait_for(self._linux.check(), self.timeout)
                detail = {"server": f"{info.name} {info.version}", "click": info.click}
            else:
                await asyncio.wait_for(self._dn.get_capabilities(), self.timeout)
        except Exception as exc:
            self._set_unavailable(
                _reason(exc)
                if not isinstance(exc, TimeoutError)
                else (f"the notification server did not answer within {self.timeout:g} s")
            )
            return
        back = not self._available
        self._available = True
        self._said_unavailable = False
        if back:
            log.info("notification server found", **detail)
            if self.on_back is not None:
                self.on_back()

    async def show(self, request: NotificationRequest) -> str:
        """One notification; raises NotifyError naming why it was not shown. A send
        that a change of server instance cut (dunst restarted under it) is sent once
        more, to the new one: the old one's notification went with it."""
        self._begun += 1
        order, before = self._begun, self._latest
        latest = self._latest = asyncio.get_running_loop().create_future()
        try:
            if request.cover and before is not None and not before.done():
                # uni's cover replaces the notification shown before: one still on its
                # way has no id to replace yet (two covers at once would make two).
                await asyncio.wait({before}, timeout=self.timeout)
            try:
                return await self._show_once(request, order)
            except _ServerChanged:
                return await self._show_once(request, order)
        finally:
            latest.set_result(None)
            if self._latest is latest:
                self._latest = None

    async def _show_once(self, request: NotificationRequest, order: int) -> str:
        from desktop_notifier import Icon, Notification, Sound, Urgency

        if not self._available and self._probing is not None and not self._probing.done():
            await asyncio.wait({self._probing}, timeout=self.timeout)
        if not self._available:
            if time.monotonic() - self._probed_at < self._reprobe_after:
                raise NotifyError(NO_SERVER)
            await self._probe()
            if not self._available:
                raise NotifyError(NO_SERVER)
        markup = self._markup and (
            self._linux is None or self._linux.server is None or (self._linux.server.markup)
        )
        title, body = render_text(request.title, request.body, markup)
        dispatched = False

        def on_dispatched() -> None:
            nonlocal dispatched
            dispatched = True

        sound: Sound | None = None
        if isinstance(request.sound, Path):
            sound = Sound(path=request.sound)
        elif request.sound == "system":
            sound = Sound(name=SYSTEM_SOUND)
        extra: dict[str, Any] = {}
        if request.cover and self._linux is None and self._last_identifier is not None:
            # macOS and Windows replace a notification that reuses an identifier.
            extra["identifier"] = self._last_identifier
        if request.urgency == "critical":
            extra["timeout"] = CRITICAL_EXPIRE_MS // 1000
        notification = Notification(
            title=title,
            message=body,
            urgency=Urgency(request.urgency),
            icon=Icon(path=request.icon) if request.icon else None,
            sound=sound,
            on_clicked=request.on_clicked,
            on_dispatched=on_dispatched,
            **extra,
        )
        call: NotifyCall | None = None
        scope: AbstractContextManager[object] = nullcontext()
        generation = 0
        if self._linux is not None:
            from .dbus_backend import NotifyCall, notify_call

            # Read before the await: a show in flight has no answer yet to replace.
            replaces = (self._last_platform_id or 0) if request.cover else 0
            category = dbus_text(request.category) if request.category is not None else None
            call = NotifyCall(
                replaces_id=replaces,
                category=category,
                desktop_entry=self.desktop_entry,
                silent=request.sound == "none",
            )
            scope = notify_call(call)
            generation = self._linux.generation
        # The task copies the context here, so the call reaches the backend.
        with scope:
            send = asyncio.ensure_future(self._dn.send_notification(notification))
        done, _ = await asyncio.wait({send}, timeout=self.timeout)
        if not done:
            # Not cancelled: the Notify call is in the server's queue, and a hung server
            # that runs again shows it. Its answer is waited for (``late``).
            self._set_unavailable(
                f"the notification server did not answer within {self.timeout:g} s"
            )

            async def late() -> str | None:
                with contextlib.suppress(Exception):
                    identifier = await send
                    # An answer from an instance that has gone since: it went with it.
                    if dispatched and (self._linux is None or self._linux.generation == generation):
                        self._probe_if_none_answers()  # it answers again: no need to wait 30 s
                        # On the screen now: a cover right after replaces it.
                        self._record_last(order, call, str(identifier))
                        return str(identifier)
                return None  # it went away (or changed) with the call unanswered

            task = asyncio.get_running_loop().create_task(late())
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            raise NotifyTimedOut(
                f"notification server did not answer within {self.timeout:g} s", task
            )
        identifier = send.result()
        if not dispatched:
            # The backend kept the cause. Only a server that is really gone switches
            # notifications off: one bad notification must not silence the ones after
            # it (issue 10 item 3).
            error = call.error if call is not None else None
            if self._linux is not None and self._linux.generation != generation:
                raise _ServerChanged(
                    "the notification server changed while this notification was sent"
                )
            if call is not None and error is not None and not self._linux_gone(call):
                raise NotifyError(
                    f"the notification server refused this notification: {_reason(error)}"
                )
            self._set_unavailable(_reason(error) if error is not None else "the send failed")
            raise NotifyError(NO_SERVER)
        self._record_last(order, call, str(identifier))
        return str(identifier)

    def _record_last(self, order: int, call: NotifyCall | None, identifier: str) -> None:
        """The notification show number ``order`` put on the screen (in time or late)
        is the one a cover replaces, unless one asked for later has answered already."""
        if order < self._last_from:
            return
        if call is None:
            self._last_identifier = identifier
            self._last_from = order
        elif call.platform_id is not None:
            self._last_platform_id = call.platform_id
            self._last_from = order

    async def close(self, identifier: str) -> None:
        """Take one of our notifications off the screen (CloseNotification on Linux); a
        failure is one log line: the server may have closed it already, or be gone."""
        try:
            await asyncio.wait_for(self._dn.clear(identifier), self.timeout)
        except Exception as exc:
            log.info("could not close a notification", reason=_reason(exc))

"""Native notifications through desktop-notifier, made safe for a long-running daemon.

desktop-notifier never raises from ``send()``, blocks forever on a hung server and
opens a new bus connection per failed send (../shared/research/
desktop-notifier-linux.md §5). This adapter bounds every call with a timeout, turns
a silent failure into :class:`NotifyError`, says once that no server is there and
then stops hammering the bus until a re-probe succeeds.

uni's ``cover`` replaces the app's previous notification, whatever kind it was, so
the adapter remembers the last one it showed, each show recording its own answer.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ..errors import NotifyError

if TYPE_CHECKING:
    from .dbus_backend import BridgeDBusBackend, NotifyCall

__all__ = [
    "MAX_BODY",
    "MAX_TITLE",
    "DesktopNotifierBackend",
    "NotificationRequest",
    "Notifier",
    "NotifyError",
    "clip",
    "dbus_text",
    "render_text",
]

log = structlog.get_logger(__name__)

#: Longest title and body we hand to the server; longer text is cut with an ellipsis.
MAX_TITLE = 256
MAX_BODY = 2048


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


class Notifier(Protocol):
    """What the bridge needs from a notification backend, on every platform."""

    @property
    def available(self) -> bool: ...

    async def start(self) -> None: ...

    async def show(self, request: NotificationRequest) -> str: ...


#: What a D-Bus string cannot carry (NUL, lone surrogates: not UTF-8) or what only
#: garbles a banner (C0 but tab and newline, DEL, C1, Unicode noncharacters, which old
#: libdbus refused). Each becomes U+FFFD, so the reader sees that something was there.
_NOT_FOR_DBUS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


def dbus_text(text: str) -> str:
    """``text`` made safe to marshal as a D-Bus string (issue 10 item 3): a sender's
    NUL or lone surrogate would otherwise fail the whole Notify call."""
    return _NOT_FOR_DBUS.sub("\ufffd", text)


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(title: str, body: str, markup: bool) -> tuple[str, str]:
    """Cut to the limits and, for markup-rendering servers, escape the body.

    Every common Linux server (dunst, GNOME, KDE, xfce) renders the body as markup,
    so text from the network must not be able to inject tags.
    """
    title, body = clip(dbus_text(title), MAX_TITLE), clip(dbus_text(body), MAX_BODY)
    if markup:
        body = html.escape(body, quote=False)
    return title, body


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class DesktopNotifierBackend:
    """Adapter over ``desktop_notifier.DesktopNotifier`` (D-Bus, macOS, WinRT)."""

    def __init__(self, app_name: str, timeout: float = 5.0, reprobe_after: float = 30.0) -> None:
        from desktop_notifier import DesktopNotifier

        self._dn = DesktopNotifier(app_name=app_name, app_icon=None)
        #: On Linux, our extension of the D-Bus backend (cover, category hints).
        self._linux: BridgeDBusBackend | None = None
        #: The last notification shown, which a cover replaces: its D-Bus id on Linux,
        #: its identifier elsewhere (macOS and Windows replace by identifier).
        self._last_platform_id: int | None = None
        self._last_identifier: str | None = None
        if sys.platform.startswith("linux"):
            from .dbus_backend import BridgeDBusBackend

            self._linux = BridgeDBusBackend(app_name, None)
            self._dn._backend = self._linux
        self.timeout = timeout
        self._reprobe_after = reprobe_after
        self._available = False
        self._probed_at = float("-inf")
        self._said_unavailable = False
        self._markup = sys.platform.startswith("linux")

    @property
    def available(self) -> bool:
        return self._available

    def set_timeout(self, timeout: float) -> None:
        """SIGHUP: a new bound for calls to the server, from the next call on."""
        self.timeout = timeout

    async def start(self) -> None:
        await self._probe()

    def _linux_gone(self, call: NotifyCall) -> bool:
        from .dbus_backend import server_gone

        return self._linux is not None and (
            server_gone(call.error) or not self._linux.bus_connected
        )

    async def _probe(self) -> None:
        self._probed_at = time.monotonic()
        try:
            if self._linux is not None:
                # desktop-notifier caches its capabilities for ever: ask the server itself.
                await asyncio.wait_for(self._linux.check(), self.timeout)
            await asyncio.wait_for(self._dn.get_capabilities(), self.timeout)
        except Exception as exc:
            self._available = False
            if not self._said_unavailable:
                self._said_unavailable = True
                log.warning(
                    "no notification server; notifications are off, receive events still flow",
                    reason=_reason(exc),
                )
            return
        if not self._available:
            log.info("notification server found")
        self._available = True
        self._said_unavailable = False

    async def show(self, request: NotificationRequest) -> str:
        from desktop_notifier import DEFAULT_SOUND, Icon, Notification, Sound, Urgency

        if not self._available:
            if time.monotonic() - self._probed_at < self._reprobe_after:
                raise NotifyError("no notification server")
            await self._probe()
            if not self._available:
                raise NotifyError("no notification server")
        markup = self._markup and (
            self._linux is None or "body-markup" in self._linux.server_capabilities
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
            sound = DEFAULT_SOUND
        extra: dict[str, Any] = {}
        if request.cover and self._linux is None and self._last_identifier is not None:
            # macOS and Windows replace a notification that reuses an identifier.
            extra["identifier"] = self._last_identifier
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
        if self._linux is not None:
            from .dbus_backend import NotifyCall, notify_call

            # Read before the await: a show in flight has no answer yet to replace.
            replaces = (self._last_platform_id or 0) if request.cover else 0
            category = dbus_text(request.category) if request.category is not None else None
            call = NotifyCall(replaces_id=replaces, category=category)
            scope = notify_call(call)
        try:
            # wait_for's task copies the context here, so the call reaches the wrapper.
            with scope:
                identifier = await asyncio.wait_for(
                    self._dn.send_notification(notification), self.timeout
                )
        except TimeoutError:
            self._available = False
            raise NotifyError(
                f"notification server did not answer within {self.timeout:g} s"
            ) from None
        if not dispatched:
            # desktop-notifier logged the cause and swallowed it. Only a server that is
            # really gone switches notifications off: one bad notification must not
            # silence the ones after it (issue 10 item 3).
            if call is not None and call.error is not None and not self._linux_gone(call):
                raise NotifyError(
                    f"the notification server refused this notification: {_reason(call.error)}"
                )
            self._available = False
            raise NotifyError("notification server refused the notification")
        if call is None:
            self._last_identifier = str(identifier)
        elif call.platform_id is not None:
            self._last_platform_id = call.platform_id
        return str(identifier)

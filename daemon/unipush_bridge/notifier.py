"""Native notifications through desktop-notifier, made safe for a long-running daemon.

desktop-notifier never raises from ``send()``, blocks forever on a hung server and
opens a new bus connection per failed send (../shared/research/
desktop-notifier-linux.md §5). This adapter bounds every call with a timeout, turns
a silent failure into :class:`NotifyError`, says once that no server is there and
then stops hammering the bus until a re-probe succeeds.
"""

from __future__ import annotations

import asyncio
import html
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

#: Longest title and body we hand to the server; longer text is cut with an ellipsis.
MAX_TITLE = 256
MAX_BODY = 2048


class NotifyError(RuntimeError):
    """The notification was not shown; the message says why."""


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    title: str
    body: str
    on_clicked: Callable[[], None] | None = None


class Notifier(Protocol):
    """What the bridge needs from a notification backend, on every platform."""

    @property
    def available(self) -> bool: ...

    async def start(self) -> None: ...

    async def show(self, request: NotificationRequest) -> str: ...


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(title: str, body: str, markup: bool) -> tuple[str, str]:
    """Cut to the limits and, for markup-rendering servers, escape the body.

    Every common Linux server (dunst, GNOME, KDE, xfce) renders the body as markup,
    so text from the network must not be able to inject tags.
    """
    title, body = clip(title, MAX_TITLE), clip(body, MAX_BODY)
    if markup:
        body = html.escape(body, quote=False)
    return title, body


class DesktopNotifierBackend:
    """Adapter over ``desktop_notifier.DesktopNotifier`` (D-Bus, macOS, WinRT)."""

    def __init__(self, app_name: str, timeout: float = 5.0, reprobe_after: float = 30.0) -> None:
        from desktop_notifier import DesktopNotifier

        self._dn = DesktopNotifier(app_name=app_name, app_icon=None)
        self.timeout = timeout
        self._reprobe_after = reprobe_after
        self._available = False
        self._probed_at = float("-inf")
        self._said_unavailable = False
        self._markup = sys.platform.startswith("linux")

    @property
    def available(self) -> bool:
        return self._available

    async def start(self) -> None:
        await self._probe()

    async def _probe(self) -> None:
        self._probed_at = time.monotonic()
        try:
            await asyncio.wait_for(self._dn.get_capabilities(), self.timeout)
        except Exception as exc:
            self._available = False
            if not self._said_unavailable:
                self._said_unavailable = True
                log.warning(
                    "no notification server; notifications are off, receive events still flow",
                    reason=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                )
            return
        if not self._available:
            log.info("notification server found")
        self._available = True
        self._said_unavailable = False

    async def show(self, request: NotificationRequest) -> str:
        from desktop_notifier import Notification

        if not self._available:
            if time.monotonic() - self._probed_at < self._reprobe_after:
                raise NotifyError("no notification server")
            await self._probe()
            if not self._available:
                raise NotifyError("no notification server")
        title, body = render_text(request.title, request.body, self._markup)
        dispatched = False

        def on_dispatched() -> None:
            nonlocal dispatched
            dispatched = True

        notification = Notification(
            title=title,
            message=body,
            on_clicked=request.on_clicked,
            on_dispatched=on_dispatched,
        )
        try:
            identifier = await asyncio.wait_for(
                self._dn.send_notification(notification), self.timeout
            )
        except TimeoutError:
            self._available = False
            raise NotifyError(
                f"notification server did not answer within {self.timeout:g} s"
            ) from None
        if not dispatched:
            # desktop-notifier logged the cause and swallowed it.
            self._available = False
            raise NotifyError("notification server refused the notification")
        return str(identifier)

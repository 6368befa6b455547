"""The notification servers behind the plugin's fixtures, one interface for both:
the capture server (in this process, on a private bus; no X) and dunst (real, under
Xvfb, see :mod:`.dunst`). A shown notification is a :class:`.table.Notification`.
"""

from __future__ import annotations

import time
from typing import Protocol

from .table import Notification

__all__ = ["CaptureBackend", "NotificationServer", "Shown", "start_server"]

Shown = Notification


class NotificationServer(Protocol):
    #: The private bus the daemon under test must use.
    address: str
    #: Extra environment for the processes under test (DISPLAY for dunst).
    env: dict[str, str]

    def notifications(self) -> list[Shown]: ...
    def click(self, notification: Shown, action: str = "default") -> None: ...
    def dismiss(self, notification: Shown) -> None: ...
    def stop(self) -> None: ...

    def wait_one(self, title: str | None, timeout: float) -> Shown: ...


def wait_one(server: NotificationServer, title: str | None, timeout: float) -> Shown:
    """Exactly one shown notification (with ``title``): waits for it, fails on two."""
    deadline = time.monotonic() + timeout
    while True:
        shown = server.notifications()
        found = [n for n in shown if title is None or n.summary == title]
        if len(found) > 1:
            raise AssertionError(f"{len(found)} notifications titled {title!r}: {found}")
        if found:
            return found[0]
        if time.monotonic() > deadline:
            titles = [n.summary for n in shown]
            raise TimeoutError(
                f"no notification titled {title!r} within {timeout:g}s (shown: {titles})"
            )
        time.sleep(0.005)


class CaptureBackend:
    """A private dbus-daemon and the capture server on a loop thread in this process."""

    def __init__(self) -> None:
        from .bus import PrivateBus
        from .capture import CaptureThread

        self.env: dict[str, str] = {}
        self.bus = PrivateBus().start()
        self.address = self.bus.address
        try:
            self.capture = CaptureThread(self.address).start()
        except BaseException:
            self.bus.stop()
            raise

    def notifications(self) -> list[Shown]:
        return self.capture.notifications()

    def all_notifications(self) -> list[Shown]:
        """With the closed ones (``closed`` says how)."""
        return self.capture.notifications(include_closed=True)

    def wait_one(self, title: str | None, timeout: float) -> Shown:
        return wait_one(self, title, timeout)

    def click(self, notification: Shown, action: str = "default") -> None:
        self.capture.act("click", notification.id, action)

    def dismiss(self, notification: Shown) -> None:
        self.capture.act("dismiss", notification.id)

    def expire(self, notification: Shown) -> None:
        self.capture.act("expire", notification.id)

    def stop(self) -> None:
        self.capture.stop()
        self.bus.stop()


def start_server(kind: str, stack: object = None) -> NotificationServer:
    """``capture`` or ``dunst`` (on ``stack``, a running DunstStack, if given)."""
    if kind == "dunst":
        from .dunst import DunstBackend
        from .notifstack import DunstStack

        server: NotificationServer = DunstBackend(stack if isinstance(stack, DunstStack) else None)
        return server
    return CaptureBackend()

"""desktop-notifier's D-Bus backend, extended with what uni's options need on Linux.

desktop-notifier 6.2.0 (pinned) always sends ``replaces_id`` 0 and no ``category``
or ``desktop-entry`` hint (../shared/research/desktop-notifier-linux.md §2). Cover
needs a real in-place replace, so this module wraps the backend's Notify call: the
rest of the library (actions, click and dismiss signals, the id map) is untouched.
It also caps the library's id map, which grows without bound on servers that never
send NotificationClosed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbus_fast.signature import Variant
from desktop_notifier.backends.dbus import DBusDesktopNotifier

#: Entries kept in desktop-notifier's platform-id map (clicks on older ones are lost).
MAX_TRACKED = 1000


@dataclass(frozen=True, slots=True)
class NotifyExtras:
    #: Platform id of the notification to replace in place (0: a new one).
    replaces_id: int = 0
    category: str | None = None
    desktop_entry: str | None = None


class _NotifyCall:
    """Stands in for the proxy interface: adds our extras to Notify, passes the rest."""

    def __init__(self, interface: Any, backend: BridgeDBusBackend) -> None:
        self._interface = interface
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._interface, name)

    async def call_notify(
        self,
        app_name: str,
        replaces_id: int,
        icon: str,
        summary: str,
        body: str,
        actions: list[str],
        hints: dict[str, Any],
        timeout: int,
    ) -> int:
        extras = self._backend.pending
        if extras is not None:
            replaces_id = extras.replaces_id
            extra_hints = {"category": extras.category, "desktop-entry": extras.desktop_entry}
            for key, value in extra_hints.items():
                if value is None:
                    continue
                # Servers with the old a{ss} hints signature get plain strings.
                hints[key] = value if _plain(hints) else Variant("s", value)
        platform_id: int = await self._interface.call_notify(
            app_name, replaces_id, icon, summary, body, actions, hints, timeout
        )
        self._backend.last_platform_id = platform_id
        return platform_id


def _plain(hints: dict[str, Any]) -> bool:
    return bool(hints) and all(isinstance(v, str) for v in hints.values())


class BridgeDBusBackend(DBusDesktopNotifier):
    """Set ``pending`` before a send; read ``last_platform_id`` after it."""

    def __init__(self, app_name: str, app_icon: Any = None) -> None:
        super().__init__(app_name, app_icon)
        self.pending: NotifyExtras | None = None
        self.last_platform_id: int | None = None
        self.server_capabilities: frozenset[str] = frozenset()

    async def _init_dbus(self) -> Any:
        interface = await super()._init_dbus()
        caps = await interface.call_get_capabilities()  # type: ignore[attr-defined]
        self.server_capabilities = frozenset(caps)
        return _NotifyCall(interface, self)

    async def _send(self, notification: Any) -> None:
        ids = self._platform_to_interface_notification_identifier
        if self.pending is not None and self.pending.replaces_id in ids:
            # Replaced in place: the old notification's callbacks go with it.
            self._clear_notification_from_cache(ids.pop(self.pending.replaces_id))
        await super()._send(notification)
        while len(ids) > MAX_TRACKED:
            oldest = next(iter(ids))
            self._clear_notification_from_cache(ids.pop(oldest))

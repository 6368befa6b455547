"""desktop-notifier's D-Bus backend, extended with what uni's options need on Linux.

desktop-notifier 6.2.0 (pinned) always sends ``replaces_id`` 0 and no ``category``
or ``desktop-entry`` hint (../shared/research/desktop-notifier-linux.md §2). Cover
needs a real in-place replace, so this module wraps the backend's Notify call: the
rest of the library (actions, click and dismiss signals, the id map) is untouched.
It also caps the library's id map, which grows without bound on servers that never
send NotificationClosed.

Per-call state travels in a :class:`NotifyCall` held by a context variable, never in
attributes of the shared backend: several sends can be in flight at once, and
desktop-notifier awaits the Notify call in the sending task, so the task's context
reaches the wrapper and each call sees only its own extras and answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from dbus_fast.errors import DBusError
from dbus_fast.signature import Variant
from desktop_notifier import Icon, Notification
from desktop_notifier.backends.dbus import DBusDesktopNotifier, get_hints_signature

from .notifier import dbus_text

#: Entries kept in desktop-notifier's platform-id map (clicks on older ones are lost).
MAX_TRACKED = 1000

#: D-Bus errors that mean nobody serves org.freedesktop.Notifications (or the bus is
#: gone). Any other failure belongs to the one notification that caused it.
GONE_ERRORS = frozenset(
    f"org.freedesktop.DBus.Error.{name}"
    for name in ("ServiceUnknown", "NameHasNoOwner", "NoReply", "Disconnected", "NoServer")
)


def server_gone(exc: BaseException | None) -> bool:
    """True for an error that means the server (or the bus) is not there any more."""
    if isinstance(exc, DBusError):
        return exc.type in GONE_ERRORS
    return isinstance(exc, OSError | EOFError)


@dataclass(slots=True)
class NotifyCall:
    """One Notify call's extras (set by the sender) and its answer (set by the wrapper)."""

    #: Platform id of the notification to replace in place (0: a new one).
    replaces_id: int = 0
    category: str | None = None
    desktop_entry: str | None = None
    #: The id the server answered for this call; None until it answers.
    platform_id: int | None = None
    #: Why the send failed (desktop-notifier logs it and swallows it).
    error: BaseException | None = None


_current: ContextVar[NotifyCall | None] = ContextVar("unipush_notify_call", default=None)


@contextmanager
def notify_call(call: NotifyCall) -> Iterator[NotifyCall]:
    """Make ``call`` the one that sends started inside this block (and tasks they spawn) use.

    A task copies the context when it is created, so ``asyncio.wait_for`` and
    ``create_task`` inside the block carry ``call`` with them.
    """
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


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
        call = _current.get()
        if call is not None:
            replaces_id = call.replaces_id
            # Servers with the old a{ss} hints signature get plain strings.
            plain = get_hints_signature(self._interface) == "a{ss}"
            extra_hints = {"category": call.category, "desktop-entry": call.desktop_entry}
            for key, value in extra_hints.items():
                if value is not None:
                    hints[key] = value if plain else Variant("s", value)
        # Every string of the call, whoever built it (app name, icon and sound URIs,
        # action labels): one that D-Bus cannot marshal fails the whole call.
        app_name, icon = dbus_text(app_name), dbus_text(icon)
        summary, body = dbus_text(summary), dbus_text(body)
        actions = [dbus_text(a) for a in actions]
        hints = {dbus_text(k): _clean_hint(v) for k, v in hints.items()}
        platform_id: int = await self._interface.call_notify(
            app_name, replaces_id, icon, summary, body, actions, hints, timeout
        )
        # The library maps platform_id to the new notification as soon as this returns.
        self._backend._forget(platform_id)
        if call is not None:
            if replaces_id:
                self._backend._forget(replaces_id)
            call.platform_id = platform_id
        return platform_id


def _clean_hint(value: Any) -> Any:
    if isinstance(value, str):
        return dbus_text(value)
    if isinstance(value, Variant) and value.signature == "s":
        return Variant("s", dbus_text(value.value))
    return value


class BridgeDBusBackend(DBusDesktopNotifier):
    """Send inside :func:`notify_call` to add extras and learn the platform id."""

    def __init__(self, app_name: str, app_icon: Icon | None = None) -> None:
        super().__init__(app_name, app_icon)
        self.server_capabilities: frozenset[str] = frozenset()

    async def _init_dbus(self) -> Any:
        interface = await super()._init_dbus()
        caps = await interface.call_get_capabilities()  # type: ignore[attr-defined]
        self.server_capabilities = frozenset(caps)
        return _NotifyCall(interface, self)

    def _forget(self, platform_id: int) -> None:
        """Drop what ``platform_id`` maps to, and its callbacks: it was replaced or is gone.

        Called when a Notify answers, before the library maps the answer: a replaced
        notification (same id back, or another id if the server had forgotten it) must
        not keep its callbacks in the cache, where nothing would ever remove them.
        """
        ids = self._platform_to_interface_notification_identifier
        identifier = ids.pop(platform_id, None)
        if identifier is not None:
            self._clear_notification_from_cache(identifier)

    @property
    def bus_connected(self) -> bool:
        """False once a bus connection was made and then lost."""
        bus = getattr(self, "bus", None)
        return bus is None or bool(bus.connected)

    async def check(self) -> None:
        """Ask the server for its capabilities now, on a new connection if the old
        one was lost; raises if nobody answers."""
        if self.interface is None or not self.bus_connected:
            self.interface = None
            self._capabilities = None
            self.interface = await self._init_dbus()
        else:
            caps = await self.interface.call_get_capabilities()  # type: ignore[attr-defined]
            self.server_capabilities = frozenset(caps)

    async def _send(self, notification: Notification) -> None:
        try:
            await super()._send(notification)
        except Exception as exc:
            call = _current.get()
            if call is not None:
                call.error = exc
            raise
        ids = self._platform_to_interface_notification_identifier
        while len(ids) > MAX_TRACKED:
            oldest = next(iter(ids))
            self._clear_notification_from_cache(ids.pop(oldest))

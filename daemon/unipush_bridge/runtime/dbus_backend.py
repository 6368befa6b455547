"""desktop-notifier's D-Bus backend, made to fit every Linux notification server.

desktop-notifier 6.2.0 (pinned) always sends ``replaces_id`` 0, no ``category`` or
``desktop-entry`` hint, ``sound-name "default"`` (not a name of the freedesktop sound
naming spec), a default action even to servers without the ``actions`` capability,
and none to xfce4-notifyd; it caches the server's capabilities for the life of the
process and logs every failed send with a traceback. This module replaces its Notify
call (:meth:`BridgeDBusBackend._send`) and keeps the rest of the library (the click
and dismiss signals, the id map, the callbacks).

Server ids are valid for one server instance only (they start at 1 again after a
restart). :class:`OwnerWatch` follows the owner of ``org.freedesktop.Notifications``
(NameOwnerChanged); when it changes, every id held (cover's, the click map) is
dropped and the server is read again (docs/notification-servers.md).

A click or close can reach us before the Notify answer that tells us its id (dbus-fast
runs a signal's handler as it reads it, the awaiting send a loop turn later): such a
signal is kept while a Notify is in flight and replayed once an answer gives its id.

Per-call state travels in a :class:`NotifyCall` held by a context variable, never in
attributes of the shared backend: several sends can be in flight at once, and
desktop-notifier awaits the Notify call in the sending task, so the task's context
reaches :meth:`BridgeDBusBackend._send` and each call sees only its own extras and
answer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError
from dbus_fast.signature import Variant
from desktop_notifier import Capability, Icon, Notification, Urgency
from desktop_notifier.backends.dbus import DBusDesktopNotifier, get_hints_signature

from .dbusmatch import add_match
from .notifier import dbus_text

logger = logging.getLogger(__name__)

NOTIF_NAME = "org.freedesktop.Notifications"

#: Entries kept in desktop-notifier's platform-id map (clicks on older ones are lost).
MAX_TRACKED = 1000
#: Signals kept per id while its Notify answer may still come (a click, then a close).
MAX_EARLY_SIGNALS = 4

#: D-Bus errors that mean nobody serves org.freedesktop.Notifications (or the bus is
#: gone). Any other failure belongs to the one notification that caused it.
GONE_ERRORS = frozenset(
    f"org.freedesktop.DBus.Error.{name}"
    for name in ("ServiceUnknown", "NameHasNoOwner", "NoReply", "Disconnected", "NoServer")
)

#: Servers that draw the default action only as a button, and only when it has a
#: label: a click on the body just closes the popup there (xfce4-notifyd 0.7).
LABELLED_DEFAULT = frozenset({"Xfce Notify Daemon"})
#: The label of that button.
DEFAULT_LABEL = "Open"

_URGENCY = {Urgency.Low: 0, Urgency.Normal: 1, Urgency.Critical: 2}


def server_gone(exc: BaseException | None) -> bool:
    """True for an error that means the server (or the bus) is not there any more."""
    if isinstance(exc, DBusError):
        return exc.type in GONE_ERRORS
    return isinstance(exc, OSError | EOFError)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What one server instance said about itself (GetServerInformation, GetCapabilities)."""

    name: str
    vendor: str
    version: str
    capabilities: frozenset[str]

    @property
    def markup(self) -> bool:
        return "body-markup" in self.capabilities

    @property
    def click(self) -> str:
        """How the user activates a notification here: ``body``, ``button`` or ``none``.

        Without ``actions`` a server gets no action at all (notify-osd turns one into a
        dialog that never expires), so no click can come from it.
        """
        if "actions" not in self.capabilities:
            return "none"
        return "button" if self.name in LABELLED_DEFAULT else "body"

    def default_action(self) -> list[str]:
        """The ``actions`` argument that makes a click work on this server."""
        click = self.click
        if click == "none":
            return []
        return ["default", DEFAULT_LABEL if click == "button" else ""]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "version": self.version,
            "click": self.click,
            "markup": self.markup,
            "capabilities": sorted(self.capabilities),
        }


@dataclass(slots=True)
class NotifyCall:
    """One Notify call's extras (set by the sender) and its answer (set by the backend)."""

    #: Platform id of the notification to replace in place (0: a new one).
    replaces_id: int = 0
    category: str | None = None
    desktop_entry: str | None = None
    #: ``suppress-sound``: the sender asked for no sound at all.
    silent: bool = False
    #: The id the server answered for this call; None until it answers, and None for
    #: an answer from a server instance that has gone since (the id means nothing now).
    platform_id: int | None = None
    #: Why the send failed (desktop-notifier would log it and swallow it).
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


def _clean_hint(value: Any) -> Any:
    if isinstance(value, str):
        return dbus_text(value)
    if isinstance(value, Variant) and value.signature == "s":
        return Variant("s", dbus_text(value.value))
    return value


class OwnerWatch:
    """Calls ``on_change(old, new)`` when the owner of org.freedesktop.Notifications
    changes (a unique name, or "" for none), on a bus connection of its own, so it
    also sees a server arrive while the backend has no connection."""

    _RULE = (
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
        f"member='NameOwnerChanged',arg0='{NOTIF_NAME}'"
    )

    def __init__(self, on_change: Callable[[str, str], None]) -> None:
        self._on_change = on_change
        self._bus: MessageBus | None = None

    @property
    def watching(self) -> bool:
        return self._bus is not None and bool(self._bus.connected)

    async def start(self) -> None:
        """Connect and subscribe; raises if the bus is not there (the caller retries)."""
        if self.watching:
            return
        self.stop()
        bus = await MessageBus().connect()
        bus.add_message_handler(self._message)
        reply = await bus.call(add_match(self._RULE))
        if reply is None or reply.message_type is MessageType.ERROR:
            bus.disconnect()
            raise DBusError("org.freedesktop.DBus.Error.Failed", "AddMatch was refused")
        self._bus = bus

    def stop(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    def _message(self, msg: Message) -> None:
        if (
            msg.message_type is MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.interface == "org.freedesktop.DBus"
            and len(msg.body) == 3
            and msg.body[0] == NOTIF_NAME
        ):
            old, new = str(msg.body[1]), str(msg.body[2])
            if old != new:
                self._on_change(old, new)


class BridgeDBusBackend(DBusDesktopNotifier):
    """Send inside :func:`notify_call` to add extras and learn the platform id."""

    def __init__(self, app_name: str, app_icon: Icon | None = None) -> None:
        super().__init__(app_name, app_icon)
        #: The server instance we talk to; None until read, and again once it has gone.
        self.server: ServerInfo | None = None
        #: Bumped whenever the server instance changes: an answer from an older one
        #: carries an id that now means another notification, or none.
        self.generation = 0
        #: Told of a server leaving (False) or arriving (True) on the bus.
        self.on_server_change: Callable[[bool], None] | None = None
        #: Told of each NotificationClosed (the id is void from then on).
        self.on_closed_id: Callable[[int], None] | None = None
        self.watch = OwnerWatch(self._owner_changed)
        #: Notify calls not answered yet, and the signals that came meanwhile for ids
        #: nothing is mapped to (yet): replayed when an answer gives that id.
        self._sending = 0
        self._early: dict[int, list[Callable[[], None]]] = {}
        #: Those signals, by the notification an answer gave their id to; send() runs
        #: them once the notification is in the library's cache.
        self._replay: dict[str, list[Callable[[], None]]] = {}

    @property
    def server_capabilities(self) -> frozenset[str]:
        return self.server.capabilities if self.server is not None else frozenset()

    async def _init_dbus(self) -> Any:
        old = getattr(self, "bus", None)
        if old is not None and old.connected:
            old.disconnect()  # one connection at a time, not one per failed attempt
        interface = await super()._init_dbus()
        self.server = await self._read_server(interface)
        return interface

    @staticmethod
    async def _read_server(interface: Any) -> ServerInfo:
        name, vendor, version, _spec = await interface.call_get_server_information()
        caps = await interface.call_get_capabilities()
        return ServerInfo(str(name), str(vendor), str(version), frozenset(map(str, caps)))

    def _owner_changed(self, old: str, new: str) -> None:
        """Another server instance (or none): every id we hold belonged to the old one."""
        self.generation += 1
        ids = self._platform_to_interface_notification_identifier
        for identifier in list(ids.values()):
            self._clear_notification_from_cache(identifier)
        ids.clear()
        self.server = None
        self._capabilities = None
        # A new owner may have another Notify signature (a{ss}): introspect it again
        # (the next connection replaces this one; a call in flight on it may finish).
        self.interface = None
        logger.debug("owner of %s: %r -> %r", NOTIF_NAME, old, new)
        if self.on_server_change is not None:
            self.on_server_change(bool(new))

    def _held_back(self, nid: int, handle: Callable[[], None]) -> bool:
        """A signal can reach us before the Notify answer that gives its id: both in
        one read of the bus socket, dbus-fast runs the signal's handler at once and
        the awaiting send a loop turn later. Kept for that answer, while one may come."""
        if nid in self._platform_to_interface_notification_identifier or not self._sending:
            return False
        if nid not in self._early and len(self._early) >= MAX_TRACKED:
            # A call can stay in flight for long (a hung server's, kept for its late
            # answer): other apps' signals must not pile up meanwhile. Oldest go first.
            del self._early[next(iter(self._early))]
        early = self._early.setdefault(nid, [])
        if len(early) < MAX_EARLY_SIGNALS:
            early.append(handle)
        return True

    def _on_action(self, nid: int, action_key: str) -> None:
        if not self._held_back(nid, lambda: self._on_action(nid, action_key)):
            super()._on_action(nid, action_key)

    def _on_closed(self, nid: int, reason: int) -> None:
        if self._held_back(nid, lambda: self._on_closed(nid, reason)):
            return
        super()._on_closed(nid, reason)
        if self.on_closed_id is not None:
            self.on_closed_id(nid)

    def _forget(self, platform_id: int) -> None:
        """Drop what ``platform_id`` maps to, and its callbacks: it was replaced or is gone.

        Called when a Notify answers, before the answer is mapped: a replaced
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

    async def check(self) -> ServerInfo:
        """Ask the server about itself now (never a cached answer), on a new connection
        if there is none; raises if nobody answers."""
        if self.interface is None or not self.bus_connected:
            self.interface = None
            self._capabilities = None
            self.interface = await self._init_dbus()
        else:
            self.server = await self._read_server(self.interface)
        assert self.server is not None
        return self.server

    async def send(self, notification: Notification) -> None:
        """The library's ``send`` without its traceback: the cause goes to the call,
        and the notifier logs one line with it."""
        try:
            await self._send(notification)
        except Exception as exc:
            call = _current.get()
            if call is not None:
                call.error = exc
            logger.debug("Notify failed: %s: %s", type(exc).__name__, exc)
            return
        self._notification_cache[notification.identifier] = notification
        self.handle_dispatched(notification.identifier, notification)
        # Its click or close came before the Notify answer: now it finds its callbacks.
        for handle in self._replay.pop(notification.identifier, []):
            handle()

    async def _get_capabilities(self) -> frozenset[Capability]:
        server = await self.check()
        caps = {Capability.APP_NAME, Capability.ICON, Capability.TITLE, Capability.TIMEOUT}
        caps |= {Capability.URGENCY, Capability.ON_DISPATCHED, Capability.ON_DISMISSED}
        if server.click != "none":
            caps |= {Capability.ON_CLICKED, Capability.BUTTONS}
        if "body" in server.capabilities:
            caps.add(Capability.MESSAGE)
        if "sound" in server.capabilities:
            caps |= {Capability.SOUND, Capability.SOUND_NAME}
        return frozenset(caps)

    async def _send(self, notification: Notification) -> None:
        if self.interface is None or self.server is None:
            self.interface = await self._init_dbus()
        server, interface = self.server, self.interface
        assert server is not None and interface is not None
        call = _current.get() or NotifyCall()
        generation = self.generation

        actions = server.default_action() if notification.on_clicked is not None else []
        hints: dict[str, Variant] = {
            "urgency": Variant("y", _URGENCY[notification.urgency]),
        }
        if notification.sound is not None:
            if notification.sound.is_named():
                hints["sound-name"] = Variant("s", notification.sound.name)
            else:
                hints["sound-file"] = Variant("s", notification.sound.as_uri())
        elif call.silent:
            hints["suppress-sound"] = Variant("b", True)
        for key, value in (("category", call.category), ("desktop-entry", call.desktop_entry)):
            if value is not None:
                hints[key] = Variant("s", value)
        signature = get_hints_signature(interface)
        if signature not in ("a{sv}", "a{ss}"):
            raise DBusError(
                "org.freedesktop.DBus.Error.InvalidSignature",
                f"the server's Notify takes hints as {signature or 'nothing'}, not a{{sv}}",
            )
        sent_hints: dict[str, Any] = {dbus_text(k): _clean_hint(v) for k, v in hints.items()}
        if signature == "a{ss}":
            # Old servers take plain strings (desktop-notifier issue 143).
            sent_hints = {
                k: dbus_text(str(v.value).lower() if v.signature == "b" else str(v.value))
                for k, v in hints.items()
            }
        icon = ""
        if notification.icon is not None:
            named = notification.icon.is_named()
            icon = notification.icon.as_name() if named else notification.icon.as_uri()
        timeout = notification.timeout * 1000 if notification.timeout != -1 else -1
        # Every string of the call: one that D-Bus cannot marshal fails the whole call.
        self._sending += 1
        try:
            platform_id: int = await interface.call_notify(  # type: ignore[union-attr]
                dbus_text(self.app_name),
                call.replaces_id,
                dbus_text(icon),
                dbus_text(notification.title),
                dbus_text(notification.message),
                [dbus_text(a) for a in actions],
                sent_hints,
                timeout,
            )
        finally:
            self._sending -= 1
        early = self._early.pop(platform_id, [])
        if not self._sending:
            self._early.clear()  # other apps' ids, or answers that never came
        # What the id meant before this answer is replaced or gone.
        self._forget(platform_id)
        if call.replaces_id:
            self._forget(call.replaces_id)
        if generation != self.generation or platform_id == 0:
            # Answered by a server instance that has gone since (its id may now be
            # another app's), or no id at all: nothing to click, nothing to cover.
            call.platform_id = None
            return
        call.platform_id = platform_id
        ids = self._platform_to_interface_notification_identifier
        ids[platform_id] = notification.identifier
        while len(ids) > MAX_TRACKED:
            oldest = next(iter(ids))
            self._clear_notification_from_cache(ids.pop(oldest))
        if early:
            self._replay[notification.identifier] = early

    async def close(self) -> None:
        """Stop watching and drop the connection (the daemon is stopping)."""
        self.watch.stop()
        bus = getattr(self, "bus", None)
        if bus is not None and bus.connected:
            with contextlib.suppress(Exception):
                bus.disconnect()

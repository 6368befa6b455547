"""The capture notification server: org.freedesktop.Notifications on dbus-fast.

It records every Notify (with its hints) in a :class:`.table.NotificationTable` and emits
what the table decides (ActionInvoked, NotificationClosed). It draws nothing and needs no
X server. :class:`CaptureServer` runs on an asyncio loop; :class:`CaptureThread` runs one
on a loop thread of its own for synchronous callers (the pytest plugin).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Annotated, Any, TypeVar

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature, DBusStr, DBusUInt32
from dbus_fast.constants import RequestNameReply
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

from .. import __version__
from ..errors import UnipushError
from .table import ActionInvoked, Notification, NotificationTable, Signal, TableError

__all__ = [
    "CAPABILITIES",
    "SERVER_NAME",
    "CaptureError",
    "CaptureServer",
    "CaptureThread",
    "TableError",
]

T = TypeVar("T")
NOTIF_NAME = "org.freedesktop.Notifications"
NOTIF_PATH = "/org/freedesktop/Notifications"
#: GetServerInformation's name: a test can tell it from a real server.
SERVER_NAME = "unipush-capture"
#: What dunst 1.9 answers, so clients take the same paths as on a common real server.
CAPABILITIES = ["actions", "body", "body-hyperlinks", "body-markup", "icon-static", "persistence"]


def plain(value: Any) -> Any:
    """A hint's value as JSON types: variants unwrapped, bytes as base64 text."""
    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


class _Interface(ServiceInterface):
    """The spec's methods; each one hands over to the server's table."""

    def __init__(self, server: CaptureServer) -> None:
        super().__init__(NOTIF_NAME)
        self._server = server

    @dbus_method()
    def Notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: Annotated[list[str], DBusSignature("as")],
        hints: Annotated[dict[str, Variant], DBusSignature("a{sv}")],
        expire_timeout: Annotated[int, DBusSignature("i")],
    ) -> DBusUInt32:
        plain_hints = {k: plain(v) for k, v in hints.items()}
        nid = self._server.table.notify(
            app_name, replaces_id, app_icon, summary, body, actions, plain_hints, expire_timeout
        )
        self._server.notified(nid)
        return nid

    @dbus_method()
    def CloseNotification(
        self,
        id: DBusUInt32,
    ) -> Annotated[None, DBusSignature("")]:
        self._server.emit(self._server.table.close_call(id))

    @dbus_method()
    def GetCapabilities(self) -> Annotated[list[str], DBusSignature("as")]:
        return list(CAPABILITIES)

    @dbus_method()
    def GetServerInformation(
        self,
    ) -> Annotated[list[str], DBusSignature("ssss")]:
        return [SERVER_NAME, "unipush-bridge", __version__, "1.2"]

    @dbus_signal()
    def ActionInvoked(
        self,
        id: int,
        action_key: str,
    ) -> Annotated[list[Any], DBusSignature("us")]:
        return [id, action_key]

    @dbus_signal()
    def NotificationClosed(
        self,
        id: int,
        reason: int,
    ) -> Annotated[list[int], DBusSignature("uu")]:
        return [id, reason]


class CaptureError(UnipushError, RuntimeError):
    """The capture server could not serve: no such bus, or the name is taken (exit 1)."""


class CaptureServer:
    """The server on one bus. Call :meth:`start`, act with the table's verbs, :meth:`stop`."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.table = NotificationTable()
        self.bus: MessageBus | None = None
        self._iface = _Interface(self)
        #: Called (on the loop) after each Notify, e.g. to wake a waiting test.
        self.on_notify: Callable[[Notification], None] | None = None

    async def start(self) -> CaptureServer:
        try:
            bus = await MessageBus(bus_address=self.address).connect()
        except (OSError, ValueError) as exc:
            raise CaptureError(f"--bus: cannot connect to {self.address!r}: {exc}") from None
        bus.export(NOTIF_PATH, self._iface)
        reply = await bus.request_name(NOTIF_NAME)
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            bus.disconnect()
            raise CaptureError(f"{NOTIF_NAME} is owned by another server on {self.address}")
        self.bus = bus
        return self

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            self.bus = None

    def notified(self, nid: int) -> None:
        """After each Notify: tell whoever waits for notifications."""
        if self.on_notify is not None:
            self.on_notify(self.table.get(nid))

    def emit(self, signals: list[Signal]) -> None:
        for sig in signals:
            if isinstance(sig, ActionInvoked):
                self._iface.ActionInvoked(sig.id, sig.action_key)
            else:
                self._iface.NotificationClosed(sig.id, sig.reason)

    def act(self, verb: str, nid: int, action_key: str = "default") -> None:
        """``click`` / ``dismiss`` / ``expire`` / ``close`` on ``nid``; TableError if refused."""
        table = self.table
        if verb == "click":
            self.emit(table.click(nid, action_key))
        elif verb == "dismiss":
            self.emit(table.dismiss(nid))
        elif verb == "expire":
            self.emit(table.expire(nid))
        elif verb == "close":
            self.emit(table.close_call(nid))
        else:
            raise TableError(f"op: unknown action {verb!r} (click, dismiss, expire, close)")


class CaptureThread:
    """A CaptureServer on a loop thread of its own, with blocking calls for tests."""

    def __init__(self, address: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="unipush-capture", daemon=True
        )
        self.server = CaptureServer(address)
        self._changed = threading.Condition()
        self.server.on_notify = lambda _n: self._notify_all()

    def _notify_all(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._call(run())

    def start(self) -> CaptureThread:
        self._thread.start()
        try:
            self._call(self.server.start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            # stopping anyway: the bus may be gone already
            with contextlib.suppress(Exception):
                self._call(self.server.stop(), timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def notifications(self, include_closed: bool = False) -> list[Notification]:
        """Copies, so a test's view does not change under it."""
        table = self.server.table
        return self._on_loop(
            lambda: [
                Notification(**{**vars(n), "actions": list(n.actions), "invoked": list(n.invoked)})
                for n in (table.all() if include_closed else table.shown())
            ]
        )

    def act(self, verb: str, nid: int, action_key: str = "default") -> None:
        self._on_loop(lambda: self.server.act(verb, nid, action_key))

    def wait_count(self, n: int, timeout: float = 10.0) -> list[Notification]:
        """Block until at least ``n`` notifications were received (open or closed)."""
        with self._changed:
            ok = self._changed.wait_for(lambda: len(self.server.table.by_id) >= n, timeout)
        if not ok:
            got = len(self.server.table.by_id)
            raise TimeoutError(f"{n} notification(s) not received within {timeout:g}s (got {got})")
        return self.notifications(include_closed=True)

"""The tray's D-Bus side: a StatusNotifierItem and its com.canonical.dbusmenu, served
with dbus-fast, registered with org.kde.StatusNotifierWatcher, and registered again
whenever a watcher (a tray host) appears later (NameOwnerChanged). Every value comes
from :mod:`.model`; this module only wraps and sends them.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures
from the annotations (``Annotated[..., DBusSignature(...)]``).
"""

import asyncio
import os
from collections.abc import Callable
from typing import Annotated, Any

import structlog
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal

from ..runtime.dbusmatch import add_match
from . import model

log = structlog.get_logger(__name__)

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_PATH = "/StatusNotifierItem"
MENU_PATH = "/MenuBar"
#: Tries, and the pause between them, to register with a watcher that just appeared.
REGISTER_TRIES = 25
REGISTER_PAUSE_S = 0.2
#: How long RegisterStatusNotifierItem may take before the tray goes on without it.
REGISTER_TIMEOUT_S = 3.0

Str = Annotated[str, DBusSignature("s")]
Int = Annotated[int, DBusSignature("i")]
UInt = Annotated[int, DBusSignature("u")]
Bool = Annotated[bool, DBusSignature("b")]
Path = Annotated[str, DBusSignature("o")]
Pixmaps = Annotated[list[Any], DBusSignature("a(iiay)")]
ToolTip = Annotated[list[Any], DBusSignature("(sa(iiay)ss)")]
Layout = Annotated[list[Any], DBusSignature("u(ia{sv}av)")]
GroupProps = Annotated[list[Any], DBusSignature("a(ia{sv})")]
Removed = Annotated[list[Any], DBusSignature("a(ias)")]
Ints = Annotated[list[int], DBusSignature("ai")]
Strs = Annotated[list[str], DBusSignature("as")]
Any_ = Annotated[Any, DBusSignature("v")]
Events = Annotated[list[Any], DBusSignature("a(isvu)")]
TwoInts = Annotated[list[Any], DBusSignature("aiai")]

StateFn = Callable[[], model.TrayState]
CommandFn = Callable[[model.Command], None]


def _props(values: dict[str, model.Typed]) -> dict[str, Variant]:
    return {k: Variant(sig, v) for k, (sig, v) in values.items()}


class Item(ServiceInterface):
    """org.kde.StatusNotifierItem: the icon, its tooltip and where its menu is."""

    def __init__(self, state: StateFn) -> None:
        super().__init__("org.kde.StatusNotifierItem")
        self._state = state

    def _p(self, name: str) -> Any:
        return model.item_properties(self._state())[name][1]

    @dbus_property(access=PropertyAccess.READ)
    def Category(self) -> Str:
        return str(self._p("Category"))

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> Str:
        return str(self._p("Id"))

    @dbus_property(access=PropertyAccess.READ)
    def Title(self) -> Str:
        return str(self._p("Title"))

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return str(self._p("Status"))

    @dbus_property(access=PropertyAccess.READ)
    def WindowId(self) -> Int:
        return int(self._p("WindowId"))

    @dbus_property(access=PropertyAccess.READ)
    def IconName(self) -> Str:
        return str(self._p("IconName"))

    @dbus_property(access=PropertyAccess.READ)
    def IconPixmap(self) -> Pixmaps:
        return list(self._p("IconPixmap"))

    @dbus_property(access=PropertyAccess.READ)
    def OverlayIconName(self) -> Str:
        return str(self._p("OverlayIconName"))

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconName(self) -> Str:
        return str(self._p("AttentionIconName"))

    @dbus_property(access=PropertyAccess.READ)
    def ToolTip(self) -> ToolTip:
        return list(self._p("ToolTip"))

    @dbus_property(access=PropertyAccess.READ)
    def ItemIsMenu(self) -> Bool:
        return bool(self._p("ItemIsMenu"))

    @dbus_property(access=PropertyAccess.READ)
    def Menu(self) -> Path:
        return str(self._p("Menu"))

    @dbus_method()
    def ContextMenu(self, x: Int, y: Int) -> None:
        """Hosts show the dbusmenu themselves."""

    @dbus_method()
    def Activate(self, x: Int, y: Int) -> None:
        """A left click: nothing of its own (the menu has every action)."""

    @dbus_method()
    def SecondaryActivate(self, x: Int, y: Int) -> None:
        """A middle click: nothing."""

    @dbus_method()
    def Scroll(self, delta: Int, orientation: Str) -> None:
        """Scrolling over the icon: nothing."""

    @dbus_signal()
    def NewTitle(self) -> None:
        return None

    @dbus_signal()
    def NewIcon(self) -> None:
        return None

    @dbus_signal()
    def NewToolTip(self) -> None:
        return None

    @dbus_signal()
    def NewStatus(self, status: Str) -> Str:
        return status


class Menu(ServiceInterface):
    """com.canonical.dbusmenu: a flat menu built by :func:`model.layout`."""

    def __init__(self, state: StateFn, command: CommandFn, opened: Callable[[], None]) -> None:
        super().__init__("com.canonical.dbusmenu")
        self._state = state
        self._command = command
        self._opened = opened
        self.revision = 1

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> UInt:
        return 3

    @dbus_property(access=PropertyAccess.READ)
    def TextDirection(self) -> Str:
        return "ltr"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return "normal"

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> Strs:
        return []

    @dbus_method()
    def GetLayout(self, parent_id: Int, recursion_depth: Int, property_names: Strs) -> Layout:
        root_id, root_props, children = model.layout(self._state())
        if parent_id != root_id:  # the items have no children
            found = dict(model.item_props(self._state(), [parent_id], property_names))
            return [self.revision, [parent_id, _props(found.get(parent_id, {})), []]]
        kids = []
        if recursion_depth != 0:
            for item_id, props in children:
                chosen = {
                    k: v for k, v in props.items() if not property_names or k in property_names
                }
                kids.append(Variant("(ia{sv}av)", [item_id, _props(chosen), []]))
        return [self.revision, [root_id, _props(root_props), kids]]

    @dbus_method()
    def GetGroupProperties(self, ids: Ints, property_names: Strs) -> GroupProps:
        return [[i, _props(p)] for i, p in model.item_props(self._state(), ids, property_names)]

    @dbus_method()
    def GetProperty(self, id: Int, name: Str) -> Any_:
        for _, props in model.item_props(self._state(), [id], [name]):
            if name in props:
                sig, value = props[name]
                return Variant(sig, value)
        return Variant("s", "")

    @dbus_method()
    def Event(self, id: Int, event_id: Str, data: Any_, timestamp: UInt) -> None:
        command = model.command_for(self._state(), id, event_id)
        if command is not None:
            self._command(command)

    @dbus_method()
    def EventGroup(self, events: Events) -> Ints:
        for item_id, event_id, _data, _ts in events:
            command = model.command_for(self._state(), item_id, event_id)
            if command is not None:
                self._command(command)
        return []

    @dbus_method()
    def AboutToShow(self, id: Int) -> Bool:
        """The menu opens: what it lists now counts as seen (see model.unread)."""
        if id == model.ROOT:
            self._opened()
        return False

    @dbus_method()
    def AboutToShowGroup(self, ids: Ints) -> TwoInts:
        if model.ROOT in ids:
            self._opened()
        return [[], []]

    @dbus_signal()
    def LayoutUpdated(self) -> Annotated[list[Any], DBusSignature("ui")]:
        return [self.revision, model.ROOT]

    @dbus_signal()
    def ItemsPropertiesUpdated(self) -> Annotated[list[Any], DBusSignature("a(ia{sv})a(ias)")]:
        changed = [[i, _props(p)] for i, p in model.menu_items(self._state())]
        return [changed, []]


class SniConnection:
    """The bus connection, the two exported objects, and the registration."""

    def __init__(self, state: StateFn, command: CommandFn, opened: Callable[[], None]) -> None:
        self.item = Item(state)
        self.menu = Menu(state, command, opened)
        self.name = f"org.kde.StatusNotifierItem-{os.getpid()}-1"
        self.bus: MessageBus | None = None
        self.registered = False
        self._shown: tuple[Any, ...] = ()
        self._state = state
        #: Registrations in flight after a watcher appeared (kept: a task only the
        #: loop refers to may be collected before it ends).
        self._registering: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self.bus is not None and self.bus.connected

    async def start(self) -> None:
        self.bus = await MessageBus(bus_type=BusType.SESSION).connect()
        self.bus.export(ITEM_PATH, self.item)
        self.bus.export(MENU_PATH, self.menu)
        await self.bus.request_name(self.name)
        self.bus.add_message_handler(self._on_message)
        rule = (
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            f"member='NameOwnerChanged',arg0='{WATCHER}'"
        )
        await self.bus.call(add_match(rule))
        self._shown = self._snapshot()
        if not await self.register() and await self._watcher_owned():
            # A watcher owns its name a moment before it serves its object
            # (status-notifier-watcher does): refused in that moment, no
            # NameOwnerChanged is coming for a name already owned, so try again.
            self._register_in_background()

    async def _watcher_owned(self) -> bool:
        """Whether some connection owns the watcher's name (NameHasOwner)."""
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=[WATCHER],
            )
        )
        return (
            reply is not None
            and reply.message_type == MessageType.METHOD_RETURN
            and bool(reply.body[0])
        )

    async def register(self) -> bool:
        """RegisterStatusNotifierItem with the watcher, if one is there (else a host
        that starts later finds us through NameOwnerChanged)."""
        assert self.bus is not None
        call = Message(
            destination=WATCHER,
            path=WATCHER_PATH,
            interface=WATCHER,
            member="RegisterStatusNotifierItem",
            signature="s",
            body=[self.name],
        )
        error: object
        try:
            # A watcher that owns its name and never answers must not hold up the
            # tray's start (its first poll waits for this).
            reply = await asyncio.wait_for(self.bus.call(call), REGISTER_TIMEOUT_S)
        except TimeoutError:
            reply, error = None, f"no answer within {REGISTER_TIMEOUT_S:g} s"
        else:
            error = None if reply is None else (reply.error_name, reply.body)
        self.registered = reply is not None and reply.message_type == MessageType.METHOD_RETURN
        if self.registered:
            log.info("tray registered with the StatusNotifierWatcher", name=self.name)
        else:
            log.info("no StatusNotifierWatcher yet; waiting for a tray host", error=error)
        return self.registered

    def _on_message(self, msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body
            and msg.body[0] == WATCHER
            and msg.body[2]
            and not self._registering  # a watcher restarting often: one at a time
        ):
            self._register_in_background()
        return False

    def _register_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self._register_soon())
        self._registering.add(task)
        task.add_done_callback(self._registering.discard)

    async def _register_soon(self) -> None:
        """A watcher may own its name a moment before its object is exported
        (status-notifier-watcher does): try again for a few seconds."""
        for _ in range(REGISTER_TRIES):
            if await self.register():
                return
            await asyncio.sleep(REGISTER_PAUSE_S)

    def _snapshot(self) -> tuple[Any, ...]:
        state = self._state()
        return (
            model.item_properties(state),
            model.menu_items(state),
        )

    def refresh(self) -> None:
        """Tell the host what changed since last time (signals only on a change)."""
        before, self._shown = self._shown, self._snapshot()
        if not before or before == self._shown:
            return
        old, new = before[0], self._shown[0]
        if old["Title"] != new["Title"]:
            self.item.NewTitle()
        if old["IconName"] != new["IconName"]:
            self.item.NewIcon()
        if old["ToolTip"] != new["ToolTip"]:
            self.item.NewToolTip()
        if old["Status"] != new["Status"]:
            self.item.NewStatus(new["Status"][1])
        if [i for i, _ in before[1]] != [i for i, _ in self._shown[1]] or before[1] != self._shown[
            1
        ]:
            self.menu.revision += 1
            self.menu.LayoutUpdated()
            self.menu.ItemsPropertiesUpdated()

    def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()

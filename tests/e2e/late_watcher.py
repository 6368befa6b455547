"""A StatusNotifierWatcher that owns its name before it serves its object, for as long
as the test likes: status-notifier-watcher does the same for about a millisecond
(measured: RegisterStatusNotifierItem answers UnknownObject right after its name
appears), a window a tray starting with it at login can fall into. Exports the
watcher on SIGUSR1; prints "owned" once it has the name.

    python late_watcher.py   (DBUS_SESSION_BUS_ADDRESS names the bus)
"""

import asyncio
import signal
from typing import Annotated

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

WATCHER = "org.kde.StatusNotifierWatcher"
Str = Annotated[str, DBusSignature("s")]
Strs = Annotated[list[str], DBusSignature("as")]


class Watcher(ServiceInterface):
    def __init__(self) -> None:
        super().__init__(WATCHER)
        self.items: list[str] = []

    @dbus_method()
    def RegisterStatusNotifierItem(self, service: Str) -> None:
        self.items.append(service)

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> Strs:
        return list(self.items)


async def main() -> None:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    await bus.request_name(WATCHER)
    export = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, export.set)
    print("owned", flush=True)
    await export.wait()
    bus.export("/StatusNotifierWatcher", Watcher())
    print("exported", flush=True)
    await bus.wait_for_disconnect()


if __name__ == "__main__":
    asyncio.run(main())

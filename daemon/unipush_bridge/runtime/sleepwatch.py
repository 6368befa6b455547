"""Notice when the machine wakes from suspend (logind's PrepareForSleep signal).

After a suspend the gateway link is often half-open: TCP says nothing until a ping
times out, and messages wait meanwhile. logind announces ``PrepareForSleep(false)``
on the system bus as the machine resumes; the daemon reconnects at once then.
Where there is no logind or no system bus (macOS, containers), the ping timeout and
SIGCONT still cover it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MATCH = (
    "type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForSleep',"
    "path='/org/freedesktop/login1'"
)


class SleepWatcher:
    def __init__(self, on_resume: Callable[[], None], bus: str = "system") -> None:
        self._on_resume = on_resume
        self._bus_kind = bus
        self._bus: Any = None

    async def start(self, timeout: float = 2.0) -> bool:
        """Subscribe; False (and a debug line) where no bus is reachable."""
        try:
            from dbus_fast import BusType
            from dbus_fast.aio import MessageBus

            from .dbusmatch import add_match

            kind = BusType.SYSTEM if self._bus_kind == "system" else BusType.SESSION
            bus = await asyncio.wait_for(MessageBus(bus_type=kind).connect(), timeout)
            bus.add_message_handler(self._handle)
            await asyncio.wait_for(
                bus.call(add_match(MATCH)),
                timeout,
            )
        except Exception as exc:
            log.info(
                "suspend detection off: no D-Bus bus for logind",
                bus=self._bus_kind,
                reason=type(exc).__name__,
            )
            return False
        self._bus = bus
        log.debug("watching for resume from suspend", bus=self._bus_kind)
        return True

    def _handle(self, message: Any) -> None:
        if (
            message.member == "PrepareForSleep"
            and message.interface == "org.freedesktop.login1.Manager"
            and message.body
            and message.body[0] is False
        ):
            self._on_resume()

    def stop(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

"""systemd's readiness protocol (sd_notify), written out instead of a dependency.

A unit with ``Type=notify`` starts us with ``NOTIFY_SOCKET`` set: one datagram of
``KEY=value`` lines per message to that AF_UNIX socket (``@name`` is the abstract
namespace). ``WATCHDOG_USEC`` (with ``WATCHDOG_PID``) says the unit has ``WatchdogSec``:
we must send ``WATCHDOG=1`` more often than that, from the event loop itself, so a
stuck loop stops the pings and systemd restarts us. Outside systemd all of it is a
no-op. Messages are best effort: a lost datagram must never take the daemon down.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

from .changes import MAX_WAIT_S, Changes

log = structlog.get_logger(__name__)

#: How often at most the STATUS= text is compared with the last one sent (every time,
#: for a caller without a change count).
STATUS_POLL_S = 0.5


def socket_address(value: str) -> str | bytes | None:
    """``NOTIFY_SOCKET`` as an address for ``sendto``: a path, or ``@name`` mapped to the
    abstract namespace (a leading NUL byte). Anything else (vsock, empty) is None."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``, as sd_watchdog_enabled
    advises; None when there is no watchdog or it is meant for another process."""
    raw = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def status_text(state: str, backlog: int, last_error: str | None) -> str:
    """One STATUS= line: what `systemctl --user status` shows beside the unit."""
    text = f"link {state}, backlog {backlog}"
    if last_error and state != "connected":
        text += f" (last error: {last_error})"
    return text.replace("\n", " ")[:200]


def message(**fields: str | int) -> bytes:
    """``KEY=value`` lines; a newline in a value would start a forged key, so it is cut."""
    return "".join(f"{k}={_one_line(str(v))}\n" for k, v in fields.items()).encode()


def _one_line(value: str) -> str:
    lines = value.splitlines()
    return lines[0] if lines else ""


class SdNotify:
    """The daemon's end of the protocol. Reads and then removes ``NOTIFY_SOCKET`` and the
    watchdog variables from the environment, so programs we start (app_command, the
    reload child) do not speak for us."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        self.address = socket_address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog = watchdog_interval(environ, os.getpid())
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            environ.pop(key, None)
        self._sock: socket.socket | None = None
        self._last_status: str | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> None:
        if self.address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message(**fields), self.address)
        except OSError as exc:
            if not self._failed:  # once: a manager that went away would flood the log
                log.warning("cannot notify the service manager", error=str(exc))
                self._failed = True

    def ready(self, status: str | None = None) -> None:
        """READY=1 (again after a reload), with the status text (the last one by default)."""
        if status is not None:
            self._last_status = status
        self.send(READY=1, STATUS=self._last_status or "ready")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd 253+ tell this reload from an older one.
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.send(STOPPING=1, STATUS="stopping")

    def status(self, text: str) -> None:
        """STATUS= only when the text changed."""
        if text != self._last_status:
            self._last_status = text
            self.send(STATUS=text)

    async def run(self, status: Callable[[], str], changes: Changes | None = None) -> None:
        """On the event loop until cancelled: STATUS= as it changes and WATCHDOG=1 every
        half watchdog period. If the loop is stuck this does not run, and systemd notices.

        With ``changes`` the status is read again when they move (and for the watchdog's
        ping), not every STATUS_POLL_S: the user service idles without waking."""
        if not self.enabled:
            return
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        tick = STATUS_POLL_S if self.watchdog is None else min(STATUS_POLL_S, self.watchdog)
        while True:
            seen = changes.count if changes is not None else 0
            self.status(status())
            if self.watchdog is not None and loop.time() >= next_ping:
                self.send(WATCHDOG=1)
                next_ping = loop.time() + self.watchdog
            if changes is None:
                await asyncio.sleep(tick)
                continue
            # While they stream (a flood of pushes), one read per tick at most.
            await asyncio.sleep(self._until(next_ping, tick))
            await changes.wait(seen, self._until(next_ping, MAX_WAIT_S))

    def _until(self, next_ping: float, most: float) -> float:
        if self.watchdog is None:
            return most
        return max(0.0, min(most, next_ping - asyncio.get_running_loop().time()))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""sd_notify's pieces (issue 14 item 1): addresses, the watchdog period, message lines, and
the pings coming from the event loop itself, so a stuck loop stops them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from unipush_bridge.runtime import sdnotify
from unipush_bridge.runtime.changes import Changes
from unipush_bridge.runtime.sdnotify import SdNotify


def test_addresses_period_and_lines() -> None:
    """issue 14 item 1: '@' is the abstract namespace; half of WATCHDOG_USEC; a newline in a
    value cannot start a forged key."""
    assert (
        sdnotify.socket_address("/run/user/1000/systemd/notify") == "/run/user/1000/systemd/notify"
    )
    assert sdnotify.socket_address("@/org/freedesktop/systemd1/notify") == (
        b"\0/org/freedesktop/systemd1/notify"
    )
    assert sdnotify.socket_address("vsock:2:1234") is None
    assert sdnotify.socket_address("") is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}, 7) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 7) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, 7) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}, 7) is None
    assert sdnotify.watchdog_interval({}, 7) is None
    assert sdnotify.message(STATUS="a\nREADY=1", READY=1) == b"STATUS=a\nREADY=1\n"
    assert sdnotify.status_text("backing_off", 3, "refused") == (
        "link backing_off, backlog 3 (last error: refused)"
    )
    assert sdnotify.status_text("connected", 0, "old") == "link connected, backlog 0"


def test_the_environment_is_taken_away_from_children() -> None:
    """issue 14 item 1: programs the daemon starts must not speak for it."""
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1", "HOME": "/h"}
    n = SdNotify(env)
    assert n.enabled and n.address == b"\0x"
    assert env == {"HOME": "/h"}
    assert not SdNotify({}).enabled


def test_a_stuck_event_loop_sends_no_pings(tmp_path: Path) -> None:
    """issue 14 item 1: WATCHDOG=1 comes from a task on the loop: while a callback blocks the
    loop for 0.8 s (4 periods of 0.2 s), no ping arrives; before and after, they do."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    pings: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                if b"WATCHDOG=1" in sock.recv(4096):
                    pings.append(time.monotonic())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read)
    reader.start()
    n = SdNotify({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
    blocked: list[float] = []

    async def main() -> None:
        task = asyncio.create_task(n.run(lambda: "link connected, backlog 0"))
        await asyncio.sleep(0.7)
        blocked.append(time.monotonic())
        time.sleep(0.8)  # noqa: ASYNC251 - the loop is stuck, on purpose
        blocked.append(time.monotonic())
        await asyncio.sleep(0.7)
        task.cancel()

    try:
        asyncio.run(main())
    finally:
        stop.set()
        reader.join()
        sock.close()
        n.close()
    start, end = blocked
    before = [t for t in pings if t < start]
    during = [t for t in pings if start + 0.05 < t < end]
    after = [t for t in pings if t > end]
    assert len(before) >= 2, pings
    assert during == [], (during, start, end)
    assert len(after) >= 2, pings


def test_with_a_change_count_an_idle_daemon_reads_its_status_only_when_it_moves(
    tmp_path: Path,
) -> None:
    """Under systemd the status text was read every 0.5 s, idle or not: two wake-ups a
    second for the user service all day. With the driver's change count it is read when
    the count moves, at most once per STATUS_POLL_S while it streams."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    n = SdNotify({"NOTIFY_SOCKET": str(path)})
    changes = Changes()
    reads: list[float] = []
    text = ["link connecting, backlog 0"]

    def status() -> str:
        reads.append(time.monotonic())
        return text[0]

    async def main() -> None:
        task = asyncio.create_task(n.run(status, changes))
        await asyncio.sleep(1.6)  # idle: three reads a poll of 0.5 s would make
        idle = len(reads)
        text[0] = "link connected, backlog 0"
        changes.bump()
        await asyncio.sleep(0.2)
        moved = len(reads)
        for _ in range(50):  # a flood of changes
            changes.bump()
            await asyncio.sleep(0.01)
        flood = len(reads) - moved
        task.cancel()
        assert idle == 1, f"{idle} reads while idle"
        assert moved == 2
        assert flood <= 3, f"{flood} reads in 0.5 s of changes"

    try:
        asyncio.run(main())
        assert sock.recv(4096) == b"STATUS=link connecting, backlog 0\n"
        assert sock.recv(4096) == b"STATUS=link connected, backlog 0\n"
    finally:
        sock.close()

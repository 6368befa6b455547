"""createPushMessage latency: a call on the local API until dunst displays the
notification, beside a bare D-Bus Notify to the same server in the same run.

    .venv/bin/python tests/bench/bench_local_notify.py [--count 200]

Both are timed to the same end point: dunst's displayedLength going from 0 to 1, read
over D-Bus; the screen is cleared between sends so dunst never redraws a stack.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dbus_fast import Message, Variant
from dbus_fast.aio import MessageBus
from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc

from unipush_bridge.clients import PushClient

NAME, PATH = "org.freedesktop.Notifications", "/org/freedesktop/Notifications"


async def displayed(bus: MessageBus) -> int:
    reply = await bus.call(
        Message(
            destination=NAME,
            path=PATH,
            interface="org.freedesktop.DBus.Properties",
            member="Get",
            signature="ss",
            body=["org.dunstproject.cmd0", "displayedLength"],
        )
    )
    return int(reply.body[0].value)


async def clear(bus: MessageBus) -> None:
    await bus.call(
        Message(
            destination=NAME,
            path=PATH,
            interface="org.dunstproject.cmd0",
            member="NotificationCloseAll",
        )
    )
    while await displayed(bus):  # noqa: ASYNC110 (dunst has no signal for this)
        await asyncio.sleep(0.001)


async def until_shown(bus: MessageBus, started: float) -> float:
    while not await displayed(bus):  # noqa: ASYNC110 (polled, as dunstctl does)
        await asyncio.sleep(0.0005)
    return time.perf_counter() - started


async def measure(socket: Path, count: int) -> tuple[list[float], list[float]]:
    bus = await MessageBus().connect()
    bare, bridged = [], []
    async with PushClient(socket) as client:
        for i in range(-10, count):  # 10 rounds of warm-up, not counted
            await clear(bus)
            t0 = time.perf_counter()
            await bus.call(
                Message(
                    destination=NAME,
                    path=PATH,
                    interface=NAME,
                    member="Notify",
                    signature="susssasa{sv}i",
                    body=[
                        "bench",
                        0,
                        "",
                        "bare",
                        f"notify {i}",
                        ["default", ""],
                        {"urgency": Variant("y", 1)},
                        -1,
                    ],
                )
            )
            bare_s = await until_shown(bus, t0)
            await clear(bus)
            t0 = time.perf_counter()
            await client.create_push_message(content=f"bridged {i}")
            bridged_s = await until_shown(bus, t0)
            if i >= 0:
                bare.append(bare_s)
                bridged.append(bridged_s)
    bus.disconnect()
    return bare, bridged


def pct(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    reason = DunstStack.ensure_tools(install=True)
    if reason:
        sys.exit(f"no notification stack: {reason}")
    with tempfile.TemporaryDirectory() as tmp, DunstStack(monitor=False) as stack:
        base = Path(tmp)
        env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
        gateway = GatewayProc(base / "gw", env=env).start()
        daemon = DaemonProc(
            base / "d", gateway.ws_url, env=env, extra=["--log-level", "warning"]
        ).start()
        try:
            with stack.use_env():
                bare, bridged = asyncio.run(measure(daemon.socket, args.count))
        finally:
            daemon.stop()
            gateway.stop()
    b50, b99 = pct(bare)
    c50, c99 = pct(bridged)
    print(
        f"bare D-Bus Notify -> dunst displays it ({len(bare)}): p50 {b50:.2f} ms, p99 {b99:.2f} ms"
    )
    print(
        f"createPushMessage -> dunst displays it ({len(bridged)}): p50 {c50:.2f} ms, "
        f"p99 {c99:.2f} ms"
    )
    ratio = c50 / b50
    print(
        f"ratio createPushMessage/bare: p50 {ratio:.2f}x, p99 {c99 / b99:.2f}x   "
        f"[target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()

"""The capture notification server on a real private bus (issue 16 item 1): a dbus-fast
client speaks the spec to it; the CLI process is driven through its control socket."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from unipush_bridge.testing.bus import PrivateBus, require_dbus_daemon
from unipush_bridge.testing.capture import CAPABILITIES, SERVER_NAME, CaptureThread
from unipush_bridge.testing.control import ControlClient, ControlError

NAME = IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


@pytest.fixture(autouse=True)
def _dbus_daemon() -> None:
    require_dbus_daemon()


@pytest.fixture
def capture() -> Iterator[CaptureThread]:
    with PrivateBus() as bus:
        server = CaptureThread(bus.address).start()
        try:
            yield server
        finally:
            server.stop()


async def call(bus: MessageBus, member: str, signature: str = "", body: Any = ()) -> list[Any]:
    reply = await bus.call(
        Message(
            destination=NAME,
            path=PATH,
            interface=IFACE,
            member=member,
            signature=signature,
            body=list(body),
        )
    )
    assert reply is not None and reply.message_type == MessageType.METHOD_RETURN, reply
    return list(reply.body)


def notify_args(summary: str, replaces_id: int = 0) -> list[Any]:
    hints = {"urgency": Variant("y", 2), "desktop-entry": Variant("s", "demo")}
    return ["demo", replaces_id, "", summary, "body", ["default", "Open"], hints, 5000]


async def signals(bus: MessageBus) -> list[tuple[str, list[Any]]]:
    got: list[tuple[str, list[Any]]] = []

    def on(msg: Message) -> None:
        if msg.message_type == MessageType.SIGNAL and msg.interface == IFACE:
            got.append((msg.member, list(msg.body)))

    bus.add_message_handler(on)
    match = Message(
        destination="org.freedesktop.DBus",
        path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus",
        member="AddMatch",
        signature="s",
        body=[f"type='signal',interface='{IFACE}'"],
    )
    await bus.call(match)
    return got


def test_spec_methods_and_signals_on_a_real_bus(capture: CaptureThread) -> None:
    """issue 16 item 1: Notify (replaces_id, actions, hints, expire_timeout),
    CloseNotification (reason 3), GetCapabilities, GetServerInformation; a click through
    the control verbs is ActionInvoked then NotificationClosed reason 2."""

    async def scenario() -> list[tuple[str, list[Any]]]:
        bus = await MessageBus(bus_address=capture.server.address).connect()
        got = await signals(bus)
        assert await call(bus, "GetCapabilities") == [CAPABILITIES]
        info = await call(bus, "GetServerInformation")
        assert info[0] == SERVER_NAME and info[3] == "1.2"
        (nid,) = await call(bus, "Notify", "susssasa{sv}i", notify_args("one"))
        assert await call(bus, "Notify", "susssasa{sv}i", notify_args("one'", nid)) == [nid]
        (other,) = await call(bus, "Notify", "susssasa{sv}i", notify_args("two"))
        await call(bus, "CloseNotification", "u", [other])
        capture.act("click", nid)
        for _ in range(200):
            if len(got) >= 3:
                break
            await asyncio.sleep(0.005)
        bus.disconnect()
        return got

    got = asyncio.run(scenario())
    assert got == [
        ("NotificationClosed", [2, 3]),
        ("ActionInvoked", [1, "default"]),
        ("NotificationClosed", [1, 2]),
    ]
    first, second = capture.notifications(include_closed=True)
    assert (first.summary, first.replaced, first.closed, first.invoked) == (
        "one'",
        1,
        2,
        ["default"],
    )
    assert first.hints == {"urgency": 2, "desktop-entry": "demo"}
    assert (first.actions, first.expire_timeout) == ([("default", "Open")], 5000)
    assert second.closed == 3


def test_cli_private_bus_and_control_socket(tmp_path: Path) -> None:
    """issue 16 item 1: `unipush-bridge capture --bus private` prints its bus and control
    socket; list/click/dismiss/expire work from another process and refusals name the
    field; SIGTERM stops it and its dbus-daemon."""
    api = tmp_path / "c.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unipush_bridge.cli",
            "capture",
            "--bus",
            "private",
            "--api",
            str(api),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["api"] == str(api) and ready["bus"].startswith("unix:path=")

        async def send() -> None:
            bus = await MessageBus(bus_address=ready["bus"]).connect()
            for title in ("a", "b", "c"):
                await call(bus, "Notify", "susssasa{sv}i", notify_args(title))
            bus.disconnect()

        asyncio.run(send())
        control = ControlClient(api)
        assert [n["summary"] for n in control.request(op="wait", count=3, timeout=5)] == list("abc")
        control.click(1)
        control.request(op="dismiss", id=2)
        control.request(op="expire", id=3)
        closed = {n["id"]: n["closed"] for n in control.notifications(closed=True)}
        assert closed == {1: 2, 2: 2, 3: 1}
        assert control.notifications() == []
        with pytest.raises(ControlError, match="id: notification 1 is closed"):
            control.click(1)
        with pytest.raises(ControlError, match="id: must be an integer"):
            control.request(op="click", id="1")
        control.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    bus_socket = Path(ready["bus"].split("path=")[1].split(",")[0])
    assert not bus_socket.exists()


def test_cli_refusals_name_the_cause_without_a_traceback(capture: CaptureThread) -> None:
    """issue 16 item 1: a bus that is not there, or one whose notification name is
    taken already, ends `capture` with exit 1 and one line naming it."""
    cases = {
        "unix:path=/nonexistent/bus": "--bus: cannot connect to 'unix:path=/nonexistent/bus'",
        capture.server.address: "org.freedesktop.Notifications is owned by another server",
    }
    for bus, message in cases.items():
        res = subprocess.run(
            [sys.executable, "-m", "unipush_bridge.cli", "capture", "--bus", bus],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert res.returncode == 1, res.stderr
        assert message in res.stderr and "Traceback" not in res.stderr, res.stderr

"""The tray's real parts for tests (issue 14 item 6): a StatusNotifierWatcher
(``status-notifier-watcher``) and a tray host (``gtk-sni-tray-standalone``) on a
private bus under Xvfb, the tray as a process, and D-Bus reads of what it serves."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Where the tray test keeps its screenshot of the host (ignored by git).
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOOLS = {
    "status-notifier-watcher": "haskell-status-notifier-item-utils",
    "gtk-sni-tray-standalone": "haskell-gtk-sni-tray-utils",
    "import": "imagemagick",
}
WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"


def require_tray_tools() -> None:
    """Fail under CI (dev.sh installs them), skip with the reason elsewhere."""
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    reason = "missing " + ", ".join(missing) + ": run `bash scripts/dev.sh test` as root"
    if os.environ.get("CI"):
        pytest.fail(f"tray stack unavailable in CI: {reason}")
    pytest.skip(f"tray stack unavailable: {reason}")


def bus_env(address: str, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "DBUS_SESSION_BUS_ADDRESS": address}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_tray(socket: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "unipush_bridge.cli", "tray", "--socket", str(socket)]
    return start(argv, env, log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _call(
    address: str, dest: str, path: str, iface: str, member: str, sig: str = "", body: Any = ()
) -> Any:
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=address).connect()
    try:
        reply = await bus.call(
            Message(
                destination=dest,
                path=path,
                interface=iface,
                member=member,
                signature=sig,
                body=list(body),
            )
        )
    finally:
        bus.disconnect()
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
    return reply.body


def call(
    address: str, dest: str, path: str, iface: str, member: str, sig: str = "", body: Any = ()
) -> Any:
    """One D-Bus call on the private bus, from a test (sync)."""
    return asyncio.run(_call(address, dest, path, iface, member, sig, body))


def prop(address: str, dest: str, path: str, iface: str, name: str) -> Any:
    (value,) = call(
        address, dest, path, "org.freedesktop.DBus.Properties", "Get", "ss", (iface, name)
    )
    return value.value


def item_prop(address: str, name: str, prop_name: str) -> Any:
    """A property of the tray's StatusNotifierItem, as a host reads it."""
    return prop(address, name, "/StatusNotifierItem", ITEM, prop_name)


def tray_name(address: str) -> str | None:
    """The tray's well-known name on the bus (org.kde.StatusNotifierItem-PID-1), if any."""
    names = call(
        address,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "ListNames",
    )[0]
    return next((n for n in names if n.startswith(ITEM + "-")), None)


def registered_items(address: str) -> list[str]:
    try:
        return list(
            prop(
                address, WATCHER, "/StatusNotifierWatcher", WATCHER, "RegisteredStatusNotifierItems"
            )
        )
    except RuntimeError:
        return []


def screenshot(env: dict[str, str], name: str) -> Path:
    """``import -window root`` of the Xvfb screen, kept under tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=20)
    return path

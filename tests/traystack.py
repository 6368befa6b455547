"""The tray's real parts for tests (issue 14 item 6): a StatusNotifierWatcher
(``status-notifier-watcher``) and tray hosts (``gtk-sni-tray-standalone``, and
xfce4-panel with its systray plugin, which is its own watcher) on a private bus under
Xvfb, the tray as a process, and D-Bus reads of what it serves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.testing.notifstack import _find
from unipush_bridge.testing.stack import wait_until

#: Where the tray test keeps its screenshot of the host (ignored by git).
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOOLS = {
    "status-notifier-watcher": "haskell-status-notifier-item-utils",
    "gtk-sni-tray-standalone": "haskell-gtk-sni-tray-utils",
    "import": "imagemagick",
}
XFCONFD = "/usr/lib/*/xfce4/xfconf/xfconfd"
#: The second host's tools: xfce4-panel and its settings daemon (found by glob).
XFCE_TOOLS = {"xfce4-panel": "xfce4-panel", XFCONFD: "xfconf", "xdotool": "xdotool"}
WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
#: One panel along the top of the screen with only the systray plugin (xfconf's own
#: file format): no first-start dialog, nothing else drawn.
XFCE_PANEL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="32"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="systray"/>
  </property>
</channel>
"""


def require_tray_tools(extra: dict[str, str] | None = None) -> None:
    """Fail under CI (dev.sh installs them), skip with the reason elsewhere."""
    tools = {**TOOLS, **(extra or {})}
    missing = [f"{tool} ({pkg})" for tool, pkg in tools.items() if _find(tool) is None]
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


def start_xfce_panel(env: dict[str, str], root: Path) -> subprocess.Popen[bytes]:
    """xfconfd with :data:`XFCE_PANEL_XML` in a private XDG_CONFIG_HOME, then
    xfce4-panel (no window manager here: --disable-wm-check, else it waits 5 s). Both
    in one new process group (the panel starts its plugins as wrapper-2.0 children):
    :func:`stop_group` ends them all."""
    xfconfd = _find(XFCONFD)
    assert xfconfd is not None
    conf = root / "xfce-config"
    channel = conf / "xfce4" / "xfconf" / "xfce-perchannel-xml"
    channel.mkdir(parents=True, exist_ok=True)
    (channel / "xfce4-panel.xml").write_text(XFCE_PANEL_XML, encoding="utf-8")
    penv = {**env, "XDG_CONFIG_HOME": str(conf), "NO_AT_BRIDGE": "1"}
    script = f'"{xfconfd}" & exec xfce4-panel --disable-wm-check'
    out = (root / "xfce4-panel.log").open("wb")
    return subprocess.Popen(
        ["sh", "-c", script], env=penv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """TERM the process group, KILL what is left after 5 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            wait_until(lambda: not _group_alive(proc), 5, "the group to exit")
            break
        except TimeoutError:
            continue
    proc.wait()


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Any process left in the group (the leader reaped first: a zombie counts)."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


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


def bus_names(address: str) -> list[str]:
    """Every name on the bus, as ListNames gives them."""
    names: list[str] = call(
        address,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "ListNames",
    )[0]
    return names


def tray_name(address: str) -> str | None:
    """The tray's well-known name on the bus (org.kde.StatusNotifierItem-PID-1), if any."""
    return next((n for n in bus_names(address) if n.startswith(ITEM + "-")), None)


def registered_items(address: str) -> list[str]:
    try:
        return list(
            prop(
                address, WATCHER, "/StatusNotifierWatcher", WATCHER, "RegisteredStatusNotifierItems"
            )
        )
    except RuntimeError:
        return []


def screenshot(
    env: dict[str, str], name: str, window: str = "root", folder: Path = ARTIFACTS
) -> Path:
    """``import -window root`` (or of one window) of the Xvfb screen, kept under
    tests/artifacts/ (or ``folder``)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    subprocess.run(["import", "-window", window, str(path)], env=env, check=True, timeout=20)
    return path


def colours(path: Path) -> int:
    """How many distinct colours an image has (an empty panel has one or two)."""
    done = subprocess.run(
        ["identify", "-format", "%k", str(path)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def window_of(env: dict[str, str], wm_class: str) -> str | None:
    """The id of a viewable top-level window of this WM_CLASS, if one is mapped."""
    done = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--class", wm_class],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ids = done.stdout.split()
    return ids[0] if ids else None

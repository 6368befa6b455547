"""``unipush-bridge doctor``: why do notifications not show? Each part they need is
checked in the order it is needed (config, state dir, one daemon, session bus,
notification server, the daemon, the gateway, the clock, the service), and each
finding names the fix. This module does the probing; ``report.py`` shows it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import email.utils
import errno
import json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnipushError
from ..paths import check_private_dir
from . import install, units
from .report import Check, fail, ok, skip

NOTIFICATIONS = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
#: More than this between our clock and the gateway's breaks ttl and scheduled times.
MAX_SKEW_S = 30.0
TIMEOUT_S = 5.0
DAEMON_MODULE = "unipush_bridge.runtime.daemon"
IMPORT_ENV = "systemctl --user import-environment DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY"


@dataclass(frozen=True)
class Request:
    appid: str
    config: Path | None = None
    state_dir: Path | None = None
    socket: Path | None = None
    notify: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Request:
        return cls(args.appid, args.config, args.state_dir, args.socket, args.notify)


@dataclass
class Findings:
    """What earlier checks learnt that later ones need."""

    options: Any = None
    bus_ok: bool = False
    server_ok: bool = False
    daemons: int = 0
    status: dict[str, Any] | None = None
    gateway_date: float | None = None
    gateway_http: str | None = None


def run(req: Request) -> list[Check]:
    return asyncio.run(_run(req))


async def _run(req: Request) -> list[Check]:
    f = Findings()
    checks = [check_config(req, f), check_state_dir(f), check_one_daemon(req, f)]
    checks += await check_bus_and_server(req, f)
    checks.append(await check_daemon(f))
    checks.append(check_gateway(f))
    checks.append(check_clock(f))
    checks.append(check_service(req))
    return checks


# -- config and state ----------------------------------------------------------------------


def check_config(req: Request, f: Findings) -> Check:
    from .. import config
    from ..runtime.options import DaemonOptions

    flags = {"appid": req.appid, "state_dir": req.state_dir, "socket": req.socket}
    path = req.config or config.default_config_path("daemon")
    try:
        f.options = config.load(config.DaemonSettings, req.config, "daemon", flags).options()
    except UnipushError as exc:
        f.options = DaemonOptions(appid=req.appid)  # the rest of the checks on the defaults
        if req.state_dir is not None:
            f.options = dataclasses.replace(f.options, state_dir=req.state_dir)
        if req.socket is not None:
            f.options = dataclasses.replace(f.options, socket=req.socket)
        return fail(
            "config", str(exc), f"edit {path}; `unipush-bridge run --print-config` checks it"
        )
    where = str(path) if path.exists() else f"defaults ({path} does not exist)"
    gateway = f"gateway {f.options.gateway}" if f.options.gateway else "no gateway set (embedded)"
    return ok("config", f"{where}; appid {f.options.appid}, {gateway}", file=str(path))


def check_state_dir(f: Findings) -> Check:
    state = Path(f.options.state_dir)
    if not os.path.lexists(state):
        return ok("state dir", f"{state} does not exist yet; the daemon creates it (mode 0700)")
    try:
        check_private_dir(state, "state dir")
    except UnipushError as exc:
        return fail("state dir", str(exc), f"chmod 700 {state} (it holds the cid's secret)")
    try:
        with tempfile.TemporaryFile(dir=state):
            pass
    except OSError as exc:
        return fail(
            "state dir",
            f"{state} is not writable: {exc.strerror or exc}",
            f"make it writable by you (ls -ld {state}), or set state_dir to another directory",
        )
    return ok("state dir", f"{state} is private and writable")


# -- daemons -------------------------------------------------------------------------------


def daemon_processes(appid: str) -> list[dict[str, Any]]:
    """The daemons of this user running for ``appid``, whatever their state dir: each holds
    ``<state_dir>/<appid>.lock`` open, which /proc shows (Linux; elsewhere empty)."""
    found: list[dict[str, Any]] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid != os.getuid():
                continue
            if DAEMON_MODULE.encode() not in (entry / "cmdline").read_bytes():
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.endswith(f"/{appid}.lock"):
                        holder: dict[str, Any] = {}
                        with contextlib.suppress(OSError, ValueError):
                            holder = json.loads(Path(target).read_text() or "{}")
                        found.append(
                            {
                                "pid": int(entry.name),
                                "state_dir": str(Path(target).parent),
                                "socket": holder.get("socket"),
                            }
                        )
                        break
    return sorted(found, key=lambda d: d["pid"])


def socket_answers(path: Path) -> bool | None:
    """True if something accepts on the socket, False if the file is stale, None if absent."""
    if not os.path.lexists(path):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(path))
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                return False
            raise
    return True


def check_one_daemon(req: Request, f: Findings) -> Check:
    appid = f.options.appid
    sock = Path(f.options.socket_path)
    daemons = daemon_processes(appid)
    f.daemons = len(daemons)
    start = f"`unipush-bridge service install --appid {appid}` (or `unipush-bridge run`)"
    if len(daemons) > 1:
        who = "; ".join(
            f"pid {d['pid']} (state dir {d['state_dir']}, socket {d['socket']})" for d in daemons
        )
        return fail(
            "one daemon",
            f"{len(daemons)} daemons run for appid {appid}: {who}; each holds its own cid "
            "and shows the pushes sent to it",
            f"stop all but one (kill {' '.join(str(d['pid']) for d in daemons[1:])}), "
            "and keep one state dir",
            daemons=daemons,
        )
    try:
        answers = socket_answers(sock)
    except OSError as exc:
        return fail("one daemon", f"cannot connect to {sock}: {exc}", f"check {sock.parent}")
    if answers is False:
        return fail(
            "one daemon",
            f"stale socket {sock}: nothing listens on it (a daemon that died left it)",
            f"start the daemon, which replaces it: {start}; or remove it (rm {sock})",
        )
    if not daemons and answers is None:
        return fail("one daemon", f"no daemon runs for appid {appid}", f"start one: {start}")
    if daemons and daemons[0]["socket"] and Path(daemons[0]["socket"]) != sock:
        other = daemons[0]["socket"]
        return fail(
            "one daemon",
            f"the daemon for appid {appid} (pid {daemons[0]['pid']}) listens on {other}, "
            f"not on {sock}, where apps and the CLI look",
            f"set the same `socket` for both (or pass --socket {other})",
            daemons=daemons,
        )
    pid = f" (pid {daemons[0]['pid']})" if daemons else ""
    return ok("one daemon", f"one daemon for appid {appid}{pid} on {sock}", daemons=daemons)


# -- the session bus and the notification server -------------------------------------------


async def check_bus_and_server(req: Request, f: Findings) -> list[Check]:
    if not sys.platform.startswith("linux"):
        f.bus_ok = f.server_ok = True
        native = "Notification Center" if sys.platform == "darwin" else "WinRT toasts"
        return [ok("session bus", f"not used on {sys.platform} ({native})")]
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if not address:
        return [
            fail(
                "session bus",
                "DBUS_SESSION_BUS_ADDRESS is not set",
                f"run this in your desktop session; for the service: {IMPORT_ENV}",
            ),
            skip("notification server", "needs the session bus"),
        ]
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    try:
        bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), TIMEOUT_S)
    except Exception as exc:
        return [
            fail("session bus", f"cannot connect to {address}: {exc}", IMPORT_ENV),
            skip("notification server", "needs the session bus"),
        ]
    f.bus_ok = True
    checks = [ok("session bus", f"connected to {address}")]

    async def call(member: str, signature: str = "", body: list[Any] | None = None) -> Any:
        msg = Message(
            destination=NOTIFICATIONS,
            path=NOTIFICATIONS_PATH,
            interface=NOTIFICATIONS,
            member=member,
            signature=signature,
            body=body or [],
        )
        reply = await asyncio.wait_for(bus.call(msg), TIMEOUT_S)
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {' '.join(map(str, reply.body))}")
        return reply.body

    try:
        try:
            name, vendor, version, spec = await call("GetServerInformation")
            (caps,) = await call("GetCapabilities")
        except Exception as exc:
            checks.append(
                fail(
                    "notification server",
                    f"no notification server on the session bus ({exc})",
                    "start your desktop's notification server, or one such as dunst, "
                    "mako or xfce4-notifyd",
                )
            )
            return checks
        f.server_ok = True
        caps = sorted(caps)
        note = "" if "actions" in caps else "; no 'actions': clicks cannot reach apps"
        checks.append(
            ok(
                "notification server",
                f"{name} {version} by {vendor} (spec {spec}); capabilities: "
                f"{', '.join(caps)}{note}",
                server=name,
                vendor=vendor,
                version=version,
                spec=spec,
                capabilities=caps,
            )
        )
        if req.notify:
            checks.append(await test_notification(bus, call))
    finally:
        bus.disconnect()
    return checks


async def test_notification(bus: Any, call: Any) -> Check:
    """Show one notification and close it, waiting for the server to say it closed."""
    from dbus_fast import Message

    from ..runtime.dbusmatch import add_match

    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    wanted: list[int] = []

    def on_message(msg: Message) -> None:
        ours = msg.member == "NotificationClosed" and msg.body and msg.body[0] in wanted
        if ours and not closed.done():
            closed.set_result(int(msg.body[1]))

    match = f"type='signal',interface='{NOTIFICATIONS}',member='NotificationClosed'"
    await bus.call(add_match(match))
    bus.add_message_handler(on_message)
    try:
        (nid,) = await call(
            "Notify",
            "susssasa{sv}i",
            [
                "unipush-bridge",
                0,
                "",
                "unipush-bridge doctor",
                "a test notification",
                [],
                {},
                10000,
            ],
        )
        wanted.append(nid)
        await call("CloseNotification", "u", [nid])
        reason = await asyncio.wait_for(closed, TIMEOUT_S)
    except Exception as exc:
        return fail(
            "test notification",
            f"the test notification failed: {exc or type(exc).__name__}",
            "see the notification server's log",
        )
    finally:
        bus.remove_message_handler(on_message)
    return ok("test notification", f"shown as id {nid} and closed (reason {reason})", id=nid)


# -- the daemon, the gateway, the clock ----------------------------------------------------


async def check_daemon(f: Findings) -> Check:
    from ..clients import PushClient
    from ..errors import DaemonUnavailable

    sock = Path(f.options.socket_path)
    try:
        async with PushClient(sock) as push:
            f.status = await asyncio.wait_for(push.status(), TIMEOUT_S)
    except (DaemonUnavailable, TimeoutError, OSError, UnipushError) as exc:
        return fail(
            "daemon",
            f"no daemon answers on {sock}: {exc or type(exc).__name__}",
            f"start it: `unipush-bridge service install --appid {f.options.appid}`, or "
            f"`journalctl --user -u {units.unit_name(_inst(f.options.appid))}` says why it stopped",
        )
    s = f.status
    if s.get("notifications") != "available" and f.server_ok:
        return fail(
            "daemon",
            f"the daemon (pid {s.get('pid')}) finds no notification server, though this "
            "session has one: it runs without this session's bus",
            f"{IMPORT_ENV}; then restart the daemon",
            pid=s.get("pid"),
        )
    return ok(
        "daemon",
        f"pid {s.get('pid')}, version {s.get('version')}, {s.get('listeners')} listener(s), "
        f"notifications {s.get('notifications')}",
        pid=s.get("pid"),
    )


def check_gateway(f: Findings) -> Check:
    from ..wire import gateway as protocol

    s = f.status
    url = (s or {}).get("gateway") or f.options.gateway
    if url is None:
        return skip("gateway", "the embedded gateway runs inside the daemon, which is not up")
    f.gateway_http = protocol.http_url(url)
    try:
        req = urllib.request.Request(f"{f.gateway_http}/healthz")
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            date = resp.headers.get("Date")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return fail(
            "gateway",
            f"the gateway at {f.gateway_http} does not answer: {reason}",
            "check the `gateway` setting, and that the gateway runs "
            f"(curl {f.gateway_http}/healthz)",
        )
    with contextlib.suppress(TypeError, ValueError):
        f.gateway_date = email.utils.parsedate_to_datetime(date or "").timestamp()
    if s is None:
        return fail(
            "gateway",
            f"{f.gateway_http} answers; registration unknown while no daemon answers",
            "start the daemon (see above)",
        )
    conn = s.get("connection", {})
    state, error = conn.get("state"), conn.get("last_error")
    if state != "connected" or not s.get("cid"):
        fix = "check the gateway's log"
        text = str(error or "").lower()
        if "token" in text or "unauthorized" in text or "4401" in text:
            fix = (
                "set client_token (UNIPUSH_BRIDGE_CLIENT_TOKEN) to the gateway's client "
                "token, then restart the daemon"
            )
        return fail(
            "gateway",
            f"{url} reachable, but the daemon is {state}"
            + (f" (last error: {error})" if error else ""),
            fix,
            connection=conn,
        )
    return ok(
        "gateway",
        f"{url}: connected and authenticated, cid {s['cid']} registered; backlog "
        f"{s.get('backlog', 0)}, {s.get('held_for_listener', 0)} held for a listener",
        cid=s["cid"],
        backlog=s.get("backlog"),
    )


def check_clock(f: Findings) -> Check:
    if f.gateway_date is None:
        return skip("clock", "needs the gateway's Date header")
    skew = time.time() - f.gateway_date
    if abs(skew) > MAX_SKEW_S:
        return fail(
            "clock",
            f"this clock is {skew:+.0f} s off the gateway's ({f.gateway_http})",
            "turn on time sync (timedatectl set-ntp true); ttl and scheduled times need it",
        )
    return ok("clock", f"within {MAX_SKEW_S:.0f} s of the gateway's ({skew:+.1f} s)")


# -- the service ---------------------------------------------------------------------------


def _inst(appid: str) -> units.Installation:
    return units.Installation(python=sys.executable, appid=appid)


def check_service(req: Request) -> Check:
    kind = install.detect_kind()
    t = install.target(kind, _inst(req.appid), os.environ)
    state = install.status(t, install.run_command)
    flags = f"--appid {req.appid}" + (f" --config {req.config}" if req.config else "")
    if "error" in state.detail:
        return fail(
            "service",
            f"cannot ask the service manager about {t.name}: {state.detail['error']}",
            "without a systemd user manager, start `unipush-bridge run` from your "
            "desktop's autostart",
        )
    if not state.installed:
        return fail(
            "service", f"{t.name} is not installed", f"unipush-bridge service install {flags}"
        )
    if state.enabled is False:
        return fail(
            "service",
            f"{t.name} is installed but not enabled",
            f"unipush-bridge service install {flags}",
        )
    if state.active is False:
        journal = f"journalctl --user -u {t.name}" if kind == "systemd" else f"see {t.path}"
        return fail(
            "service",
            f"{t.name} is enabled but not active ({state.detail.get('SubState', 'stopped')})",
            f"{journal} says why; then `systemctl --user restart {t.name}`",
        )
    status_text = state.detail.get("StatusText")
    return ok(
        "service",
        f"{t.name} installed, enabled, active" + (f": {status_text}" if status_text else ""),
    )

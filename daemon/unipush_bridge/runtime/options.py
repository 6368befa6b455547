"""The daemon's settings once validated: plain data the daemon process runs on.

``unipush-bridge run`` validates the config (pydantic-settings, in config.py) and
then replaces itself with the daemon process, handing it these options through a
pipe. The daemon never imports the validation stack, which keeps a long-running
process about a quarter smaller (docs/architecture.md, "memory").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from ..paths import APP, DEFAULT_APPID, default_socket

PATHS = ("state_dir", "socket", "app_root", "app_icon", "sounds_dir")
APPID_PATTERN = r"^[A-Za-z0-9_.\-]+$"


def setting(
    default: Any = MISSING,
    *,
    doc: str,
    live: bool = True,
    factory: Callable[[], Any] | None = None,
    **rules: Any,
) -> Any:
    """Declare a daemon setting once: its default, what it means, whether SIGHUP can
    change it in a running daemon (``live``), and the rules config.py has pydantic
    check (``ge``, ``max_length``, ``pattern``, ...). config.py builds its
    pydantic-settings model from these declarations."""
    meta = {"doc": doc, "live": live, "rules": rules}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


@dataclass(frozen=True)
class DaemonOptions:
    gateway: str | None = setting(
        None, doc="gateway websocket URL; empty = start the embedded gateway", live=False
    )
    appid: str = setting(
        DEFAULT_APPID,
        doc="uni appId",
        live=False,
        min_length=1,
        max_length=64,
        pattern=APPID_PATTERN,
    )
    state_dir: Path = setting(doc="cid, cursor, inbox", live=False, factory=default_state_dir)
    socket: Path | None = setting(
        None, doc="local API socket (default: from the appid)", live=False
    )
    app_name: str = setting(
        "unipush-bridge",
        doc="title of notifications that have none; the app name servers show",
        min_length=1,
        max_length=64,
    )
    desktop_entry: str | None = setting(
        None,
        doc="the desktop-entry hint: the app's .desktop file name without .desktop",
        max_length=255,
        pattern=r"^[A-Za-z0-9_.\-]+$",
    )
    app_command: tuple[str, ...] = setting(
        (), doc='started on a click when no app listens, e.g. ["myapp", "--from-push"]'
    )
    client_token: str | None = setting(
        None, doc="token presented in hello (the gateway's client_token)", live=False
    )
    embedded_port: int = setting(
        8787, doc="port of the embedded gateway (0 = any)", live=False, ge=0, le=65535
    )
    ping_interval: float = setting(30.0, doc="seconds between keepalive pings", gt=0)
    ping_timeout: float = setting(20.0, doc="no pong within this many seconds: link dead", gt=0)
    notify_timeout: float = setting(
        5.0, doc="longest wait for the notification server", gt=0, le=60
    )
    flood_threshold: int = setting(
        10, doc="more notifications than this within flood_window are summed up (0 = never)", ge=0
    )
    flood_window: float = setting(10.0, doc="seconds", gt=0)
    sleep_bus: Literal["system", "session", "off"] = setting(
        "system", doc="where logind announces resume from suspend", live=False
    )
    log_level: Literal["debug", "info", "warning", "error"] = setting("info", doc="log level")
    log_format: Literal["auto", "console", "json"] = setting(
        "auto", doc="auto: console on a TTY, JSON lines otherwise"
    )
    app_root: Path | None = setting(None, doc="relative and _www/ icons resolve here")
    app_icon: Path | None = setting(None, doc="icon of notifications without a usable one")
    sounds_dir: Path | None = setting(None, doc="a channel's soundName is a file in here")
    history_size: int = setting(100, doc="shown notifications remembered", ge=1, le=10_000)
    quiet_hours: str | None = setting(
        None,
        doc='local time when notifications are held back, e.g. "22:00-07:00" (over '
        "midnight allowed; empty = none); checked by core.parse_quiet_hours",
    )
    quiet_breakthrough: bool = setting(
        False, doc="channels of importance 4 are shown during quiet hours"
    )
    max_held_mib: float = setting(
        64.0,
        doc="memory held pushes may take while no app listens (MiB, about); past it the "
        "daemon takes no more pushes from the gateway, which keeps them, until an app "
        "listens or their ttl ends",
        gt=0,
        le=65536,
    )
    listener_timeout: float = setting(
        30.0,
        doc="seconds a listener may take to acknowledge before it counts as stuck",
        live=False,
        gt=0,
        le=3600,
    )
    max_local_connections: int = setting(
        64,
        doc="local API socket connections at once; past it a client is refused with a "
        "request:fail line (each may hold 4 MiB unread)",
        live=False,
        ge=1,
        le=4096,
    )
    web_port: int | None = setting(
        None,
        doc="port of the web endpoint for browser pages (docs/web.md); empty = off, 0 = any",
        live=False,
        ge=0,
        le=65535,
    )
    web_host: str = setting(
        "127.0.0.1",
        doc="address of the web endpoint; loopback only (127.0.0.1, ::1, localhost)",
        live=False,
    )
    web_origins: tuple[str, ...] = setting(
        (),
        doc='origins whose pages may connect, e.g. ["http://localhost:5173"]',
        live=False,
    )
    web_rate: float = setting(
        20.0,
        doc="requests a second one web page may make (a burst of twice that)",
        live=False,
        gt=0,
        le=1000,
    )
    #: The command that prints these options again, for SIGHUP reloads (not a setting).
    reload_argv: tuple[str, ...] = ()

    @property
    def socket_path(self) -> Path:
        return self.socket or default_socket(self.appid)

    def to_json(self) -> str:
        data = asdict(self)
        for key in PATHS:
            data[key] = None if data[key] is None else str(data[key])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> DaemonOptions:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown daemon options: {', '.join(sorted(unknown))}")
        for key in PATHS:
            if data.get(key) is not None:
                data[key] = Path(data[key])
        data["app_command"] = tuple(data["app_command"])
        data["web_origins"] = tuple(data.get("web_origins", ()))
        data["reload_argv"] = tuple(data.get("reload_argv", ()))
        return cls(**data)

    @classmethod
    def settings(cls) -> list[Any]:
        """The fields that are settings (every one but reload_argv)."""
        return [f for f in fields(cls) if "doc" in f.metadata]

    @classmethod
    def restart_only(cls) -> tuple[str, ...]:
        """Settings SIGHUP cannot change (they name the daemon's identity and sockets)."""
        return tuple(f.name for f in cls.settings() if not f.metadata["live"])

    def keeping(self, old: DaemonOptions, keys: tuple[str, ...]) -> DaemonOptions:
        """These options with ``keys`` taken from ``old`` (settings a reload cannot change)."""
        return replace(self, **{k: getattr(old, k) for k in keys})

"""The daemon's settings once validated: plain data the daemon process runs on.

``unipush-bridge run`` validates the config (pydantic-settings, in config.py) and
then replaces itself with the daemon process, handing it these options through a
pipe. The daemon never imports the validation stack, which keeps a long-running
process about a quarter smaller (docs/architecture.md, "memory").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

PATHS = ("state_dir", "socket_path", "app_root", "app_icon", "sounds_dir")


@dataclass(frozen=True)
class DaemonOptions:
    gateway: str | None
    appid: str
    state_dir: Path
    socket_path: Path
    app_name: str
    app_command: tuple[str, ...]
    client_token: str | None
    embedded_port: int
    ping_interval: float
    ping_timeout: float
    notify_timeout: float
    flood_threshold: int
    flood_window: float
    sleep_bus: str
    log_level: str
    log_format: str
    app_root: Path | None = None
    app_icon: Path | None = None
    sounds_dir: Path | None = None
    history_size: int = 100
    #: The command that prints these options again, for SIGHUP reloads.
    reload_argv: tuple[str, ...] = ()

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
        data["reload_argv"] = tuple(data.get("reload_argv", ()))
        return cls(**data)

    def keeping(self, old: DaemonOptions, keys: tuple[str, ...]) -> DaemonOptions:
        """These options with ``keys`` taken from ``old`` (settings a reload cannot change)."""
        return replace(self, **{k: getattr(old, k) for k in keys})

"""Names and places every part agrees on, with no heavy imports: the client library
and the daemon need them without loading the config machinery."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP = "unipush-bridge"
DEFAULT_APPID = "__UNI__DESKTOP"


def runtime_dir() -> Path:
    """Where local sockets live: $XDG_RUNTIME_DIR/unipush-bridge, else a private /tmp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / APP
    return Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"


def default_socket(appid: str) -> Path:
    return runtime_dir() / f"{appid}.sock"

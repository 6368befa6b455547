"""A process whose wall clock the test sets while it runs (libfaketime).

The process is started with ``env`` (LD_PRELOAD of libfaketime): its
``CLOCK_REALTIME`` is the real one plus the offset in a file this object writes,
read again at every call, while ``CLOCK_MONOTONIC`` stays real. That is a wall
clock stepped by NTP or by hand, as the daemon sees it. Debian's package is
``faketime``; it is installed when missing and we run as root with apt-get, as the
e2e stack's packages are, else the test is skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = "faketime"
PATTERN = "/usr/lib/*/faketime/libfaketime.so.1"


def library() -> str | None:
    found = sorted(glob.glob(PATTERN))
    return found[0] if found else None


def require_libfaketime() -> str:
    """The library's path; installs the package as root, else skips with the reason."""
    lib = library()
    if lib is not None:
        return lib
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None or os.environ.get("UNIPUSH_E2E_NO_INSTALL"):
        pytest.skip(f"libfaketime missing (Debian: apt-get install {PACKAGE}); not installing it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", PACKAGE]):
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
    lib = library()
    if lib is None:
        pytest.skip(f"libfaketime still missing after apt-get install {PACKAGE}")
    return lib


class SteppedClock:
    """The offset file of one libfaketime process and the environment that reads it."""

    def __init__(self, path: Path) -> None:
        self.lib = require_libfaketime()
        self.path = path
        self.offset = 0
        self._write()

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": self.lib,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            # Monotonic time stays real: only the wall clock is stepped.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def step(self, seconds: int) -> None:
        """Set the process's wall clock ``seconds`` further (negative: back)."""
        self.offset += seconds
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:+d}\n")
        tmp.replace(self.path)

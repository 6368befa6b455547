"""The real ``systemd-analyze --user verify`` on a unit written under a test's tmp dir,
with a private runtime and config dir, as the unit tests of both units run it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def systemd_verify(tmp_path: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

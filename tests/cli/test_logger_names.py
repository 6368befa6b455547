"""The daemon's log lines name their module also when it runs as ``python -m`` (the
way `unipush-bridge run` starts it): `"logger": "__main__"` says nothing in a journal
and matches no filter written for unipush_bridge.runtime.daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENTRY = "from unipush_bridge.launch import main; raise SystemExit(main())"


def test_the_daemons_own_lines_name_its_module(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UNIPUSH_BRIDGE_", "DBUS_", "DISPLAY", "WAYLAND"))
    }
    env.update(XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    argv = [sys.executable, "-c", ENTRY, "run", "--state-dir", str(tmp_path / "st")]
    argv += ["--appid", "__UNI__LOGNAME", "--embedded-port", "0", "--log-format", "json"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    loggers: set[str] = set()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("{"):
                loggers.add(json.loads(line).get("logger", ""))
            if "local API listening" in line:
                break
    finally:
        proc.terminate()
        proc.wait(10)
    assert "unipush_bridge.runtime.daemon" in loggers, loggers
    assert "__main__" not in loggers

"""The plugin's gateway and daemon are the test's own: a developer's config files (the
daemon they run day to day, in ~/.config/unipush-bridge/) do not reach them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_TEST = """
def test_click(unipush):
    assert unipush.daemon.status()["quiet"]["schedule"] is None
    status, answer = unipush.gateway.call(
        "sendMessage", {"push_clientid": unipush.cid, "title": "t" * 21, "content": "c"}
    )
    assert status == 400 and "title" in answer["errMsg"], answer  # the default limits
    unipush.push(title="Order shipped", payload={"order": 42})
    unipush.click(unipush.notification(title="Order shipped"))
    assert unipush.wait_for_event("click")["data"]["payload"] == {"order": 42}
"""


def test_a_users_config_files_do_not_reach_the_fixtures(tmp_path: Path) -> None:
    """A daemon.toml with quiet hours all day and a web_port, and a gateway.toml with
    relaxed limits, in the user's config dir: the fixtures' processes ignore them (they
    read them, so the daemon held every notification back, or exited when the user's
    own daemon held that web_port, and the gateway took a 21-character title)."""
    home = tmp_path / "home"
    conf = home / ".config" / "unipush-bridge"
    conf.mkdir(parents=True)
    (conf / "daemon.toml").write_text('quiet_hours = "00:00-23:59"\n')
    (conf / "gateway.toml").write_text("strict_limits = false\n")
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_it.py").write_text(PROJECT_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout

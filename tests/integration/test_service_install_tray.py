"""`unipush-bridge service install --tray` and `uninstall` as real processes (issue 14
item 3, brief item 4), against the same stand-in ``systemctl`` on PATH as
test_service_install.py (it records each call; no systemd user manager runs here)."""

from __future__ import annotations

import sys

from tests.integration.test_service_install import calls, home, unit_file
from tests.procs import cli

DAEMON = "unipush-bridge-__UNI__SVC.service"
TRAY = "unipush-bridge-tray-__UNI__SVC.service"


def test_install_tray_writes_both_units_reloads_once_and_enables_both(
    home: dict[str, str],
) -> None:
    """issue 14 brief item 4: both units written before systemd reads them, one
    daemon-reload, one enable --now naming both; --no-start: enable without --now;
    uninstall stops, disables and removes both (the tray's first)."""
    res = cli("service", "install", "--tray", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    daemon, tray = unit_file(home, DAEMON), unit_file(home, TRAY)
    assert "Type=notify" in daemon.read_text()
    tray_text = tray.read_text()
    assert f"ExecStart={sys.executable} -m unipush_bridge.cli tray --appid __UNI__SVC" in tray_text
    assert f"Wants={DAEMON}" in tray_text
    assert calls(home) == ["--user daemon-reload", f"--user enable --now {DAEMON} {TRAY}"]
    assert res.stdout.splitlines() == [
        f"wrote {daemon}",
        f"wrote {tray}",
        f"enabled {DAEMON} and started it",
        f"enabled {TRAY} and started it",
    ]

    res = cli("service", "install", "--tray", "--no-start", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    assert calls(home)[-2:] == ["--user daemon-reload", f"--user enable {DAEMON} {TRAY}"]

    before = len(calls(home))
    res = cli("service", "uninstall", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    assert not daemon.exists() and not tray.exists()
    assert calls(home)[before:] == [
        f"--user disable --now {TRAY}",
        "--user daemon-reload",
        f"--user disable --now {DAEMON}",
        "--user daemon-reload",
    ]


def test_install_tray_without_a_user_manager_names_both_written_units(
    home: dict[str, str],
) -> None:
    """issue 14 brief item 4: systemctl cannot reach a user manager: exit 1, both files
    are there and the error says so (and what to do instead)."""
    err = {"STUB_RC": "1", "STUB_ERR": "Failed to connect to bus: No medium found"}
    res = cli("service", "install", "--tray", "--appid", "__UNI__SVC", env={**home, **err})
    assert res.returncode == 1
    daemon, tray = unit_file(home, DAEMON), unit_file(home, TRAY)
    assert daemon.exists() and tray.exists()
    assert f"{daemon} and {tray} are written, but no systemd user manager runs" in res.stderr


assert home

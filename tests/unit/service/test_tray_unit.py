"""`service install --tray` (issue 14 item 3): the tray's user unit, through the real
`systemd-analyze --user verify`, and the CLI's --print of both units."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.procs import cli
from tests.unit.service.systemdkit import systemd_verify
from unipush_bridge.errors import UsageError
from unipush_bridge.service import install, units
from unipush_bridge.service.units import Installation


def test_tray_unit_runs_the_tray_after_the_daemon(tmp_path: Path) -> None:
    """issue 14 item 3: same interpreter and appid and config; after and wanting the
    daemon's unit, not bound to it (the tray outlives a daemon restart)."""
    conf = tmp_path / "d.toml"
    inst = Installation(python="/venv/bin/python", appid="__UNI__T", config=conf, home=tmp_path)
    text = units.systemd_tray_unit(inst)
    words = f"/venv/bin/python -m unipush_bridge.cli tray --appid __UNI__T --config {conf}"
    assert f"ExecStart={words}" in text
    assert "After=graphical-session.target unipush-bridge-__UNI__T.service" in text
    assert "Wants=unipush-bridge-__UNI__T.service" in text
    assert "BindsTo" not in text and "Requires" not in text
    assert units.tray_unit_name(inst) == "unipush-bridge-tray-__UNI__T.service"
    t = install.tray_target("systemd", inst, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert t.path == tmp_path / "systemd" / "user" / "unipush-bridge-tray-__UNI__T.service"
    with pytest.raises(UsageError, match="--tray"):
        install.tray_target("launchd", inst, {})


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verifies_the_tray_unit(tmp_path: Path) -> None:
    """issue 14 item 3: no warning from `systemd-analyze --user verify`."""
    inst = Installation(python=sys.executable, appid="__UNI__VERIFY", home=tmp_path)
    unit = tmp_path / units.tray_unit_name(inst)
    unit.write_text(units.systemd_tray_unit(inst))
    (tmp_path / units.unit_name(inst)).write_text(units.systemd_unit(inst))
    done = systemd_verify(tmp_path, unit)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_install_print_tray_shows_both_units(tmp_path: Path) -> None:
    """issue 14 item 3: --print --tray shows the daemon's unit, then the tray's."""
    res = cli("service", "install", "--print", "--tray", "--platform", "systemd")
    assert res.returncode == 0, res.stderr
    assert res.stdout.index("Type=notify") < res.stdout.index("cli tray --appid")
    assert "unipush-bridge-tray.service" in res.stderr
    refused = cli("service", "install", "--print", "--tray", "--platform", "launchd")
    assert refused.returncode == 2 and "--tray" in refused.stderr

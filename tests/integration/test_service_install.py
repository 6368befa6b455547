"""`unipush-bridge service install|uninstall|status` as real processes (issue 14 item 1).

This machine has no systemd user manager (no systemd as PID 1), so ``systemctl`` is a
stand-in on PATH that records each call and answers ``show`` like systemd 252 does;
everything else is real: the CLI, the unit file it writes, and the daemon that the
unit's ExecStart runs, with NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import GatewayProc, Proc, cli

STUB = """\
#!{python}
import os, sys
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if "show" in sys.argv:
    sys.stdout.write(os.environ.get("STUB_SHOW", ""))
sys.stderr.write(os.environ.get("STUB_ERR", ""))
sys.exit(int(os.environ.get("STUB_RC", "0")))
"""


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "systemctl"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "STUB_LOG": str(tmp_path / "systemctl.log"),
    }


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["STUB_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def unit_file(env: dict[str, str], name: str = "unipush-bridge-__UNI__SVC.service") -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / name


def test_print_writes_and_runs_nothing(home: dict[str, str]) -> None:
    """issue 14 item 1: `service install --print` shows the unit and touches nothing."""
    res = cli("service", "install", "--print", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    assert "Type=notify" in res.stdout
    assert f"ExecStart={sys.executable} -m unipush_bridge.cli run --appid __UNI__SVC" in res.stdout
    assert str(unit_file(home)) in res.stderr
    assert not unit_file(home).exists()
    assert calls(home) == []
    plist = cli("service", "install", "--print", "--platform", "launchd", env=home)
    assert plist.returncode == 0 and "<key>RunAtLoad</key>" in plist.stdout


def test_install_no_start_install_status_uninstall(home: dict[str, str], tmp_path: Path) -> None:
    """issue 14 item 1: install writes the unit, reloads systemd and enables it (--now unless
    --no-start); status reads systemctl show; uninstall disables, stops and removes it."""
    conf = tmp_path / "daemon.toml"
    conf.write_text("")
    res = cli(
        "service", "install", "--no-start", "--appid", "__UNI__SVC", "--config", str(conf), env=home
    )
    assert res.returncode == 0, res.stderr
    text = unit_file(home).read_text()
    assert f"--config {conf}" in text
    assert calls(home) == [
        "--user daemon-reload",
        "--user enable unipush-bridge-__UNI__SVC.service",
    ]

    res = cli("service", "install", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    assert calls(home)[-1] == "--user enable --now unipush-bridge-__UNI__SVC.service"
    assert "--config" not in unit_file(home).read_text()

    show = (
        "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\n"
        "StatusText=link connected, backlog 0\nMainPID=4242\nNRestarts=0\n"
    )
    res = cli(
        "service", "status", "--json", "--appid", "__UNI__SVC", env={**home, "STUB_SHOW": show}
    )
    assert res.returncode == 0, res.stderr
    state = json.loads(res.stdout)
    assert state["installed"] and state["enabled"] and state["active"] and state["ok"]
    assert state["detail"]["StatusText"] == "link connected, backlog 0"
    res = cli(
        "service",
        "status",
        "--appid",
        "__UNI__SVC",
        env={**home, "STUB_SHOW": show.replace("=active", "=failed")},
    )
    assert res.returncode == 1
    assert "active:     no" in res.stdout

    res = cli("service", "uninstall", "--appid", "__UNI__SVC", env=home)
    assert res.returncode == 0, res.stderr
    assert not unit_file(home).exists()
    assert calls(home)[-2:] == [
        "--user disable --now unipush-bridge-__UNI__SVC.service",
        "--user daemon-reload",
    ]


def test_a_refusing_systemctl_and_a_missing_config_are_errors(home: dict[str, str]) -> None:
    """issue 14 item 1: the failing command and its answer are named (exit 1); a --config that
    does not exist is a usage error (exit 2), before anything is written."""
    res = cli("service", "install", "--appid", "__UNI__SVC", env={**home, "STUB_RC": "1"})
    assert res.returncode == 1
    assert "`systemctl --user daemon-reload` failed (exit 1)" in res.stderr
    res = cli(
        "service", "install", "--appid", "__UNI__X", "--config", "/nonexistent.toml", env=home
    )
    assert res.returncode == 2
    assert "--config /nonexistent.toml: no such file" in res.stderr
    assert not unit_file(home, "unipush-bridge-__UNI__X.service").exists()


def test_the_units_execstart_runs_a_daemon_that_gets_ready(
    home: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    """issue 14 item 1: the ExecStart the unit holds, started as systemd would start it (its
    words, NOTIFY_SOCKET, WATCHDOG_USEC), is a daemon that reports READY=1 and pings."""
    gw = GatewayProc(tmp_path / "gw").start()
    procs.append(gw)
    conf = tmp_path / "daemon.toml"
    conf.write_text(
        f'gateway = "{gw.ws_url}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'socket = "{tmp_path / "api.sock"}"\n'
    )
    res = cli(
        "service", "install", "--print", "--appid", "__UNI__SVC", "--config", str(conf), env=home
    )
    line = next(x for x in res.stdout.splitlines() if x.startswith("ExecStart="))
    argv = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line[len("ExecStart=") :])]
    assert argv[:3] == [sys.executable, "-m", "unipush_bridge.cli"]

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(15)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}
    env.pop("UNIPUSH_BRIDGE_GATEWAY", None)
    daemon = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while not ({"READY=1", "WATCHDOG=1"} <= set(seen)) and time.monotonic() < deadline:
            seen += notify.recv(4096).decode().splitlines()
        assert "READY=1" in seen and "WATCHDOG=1" in seen, seen
        assert (tmp_path / "api.sock").exists()
    finally:
        daemon.terminate()
        assert daemon.wait(10) == 0
        notify.close()


def test_no_user_manager_says_so(home: dict[str, str]) -> None:
    """issue 14 item 1: without a systemd user manager (as on this machine), install says the
    unit is written and where the daemon can be started instead (exit 1)."""
    err = {"STUB_RC": "1", "STUB_ERR": "Failed to connect to bus: No medium found"}
    res = cli("service", "install", "--appid", "__UNI__SVC", env={**home, **err})
    assert res.returncode == 1
    assert "Failed to connect to bus" in res.stderr
    assert f"{unit_file(home)} is written, but no systemd user manager runs" in res.stderr
    assert unit_file(home).exists()

"""`unipush-bridge doctor` against real parts (issue 14 item 2): a real gateway and daemon
processes on loopback, dunst on a private bus under Xvfb (tests/notifstack.py), a bus
with no notification server, no bus, a wrong client token, a stale socket, a second
daemon. Only ``systemctl`` is a stand-in (no systemd user manager runs here).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifstack import DunstStack, _bus_conf, require_tools
from tests.procs import DaemonProc, GatewayProc, Proc, cli, wait_for

STUB = """\
#!{python}
import os, sys
if "show" in sys.argv:
    sys.stdout.write(os.environ.get("STUB_SHOW", ""))
"""
ACTIVE = (
    "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\n"
    "StatusText=link connected, backlog 0\n"
)
TOKEN = "a-client-token-of-32-characters!"


@pytest.fixture(scope="module")
def dunst() -> Iterator[DunstStack]:
    require_tools()
    with DunstStack() as stack:
        yield stack


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private config dir, a stand-in systemctl that says the unit is active, no bus."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "systemctl"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        STUB_SHOW=ACTIVE,
    )
    return env


def appid() -> str:
    """One per test: doctor counts every daemon of this user for the appid."""
    return f"__UNI__DOC{uuid.uuid4().hex[:8].upper()}"


def doctor(daemon: DaemonProc, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["doctor", "--json", "--appid", daemon.appid, "--socket", str(daemon.socket)]
    state = daemon.socket.parent
    res = cli(*args, "--state-dir", str(state), *extra, env=env, timeout=60)
    assert res.stderr == "", res.stderr
    report = json.loads(res.stdout)
    return res.returncode, {c["name"]: c for c in report["checks"]} | {"ok": report["ok"]}


def outcomes(checks: dict[str, Any]) -> dict[str, str]:
    return {k: v["outcome"] for k, v in checks.items() if k != "ok"}


def test_all_pass_on_dunst_with_a_test_notification(
    tmp_path: Path, procs: list[Proc], dunst: DunstStack, env: dict[str, str]
) -> None:
    """issue 14 item 2: with dunst, a connected daemon and an active unit every check is ok,
    in order, exit 0; --notify shows a notification and closes it; text output too."""
    dunst.reset()
    env = {**env, **{k: dunst.env[k] for k in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}}
    gw = GatewayProc(tmp_path / "gw").start()
    procs.append(gw)
    daemon = DaemonProc(tmp_path / "d", gw.ws_url, env=dunst.env, appid=appid())
    procs.append(daemon)
    daemon.start()
    daemon.socket.parent.chmod(0o700)  # the daemon leaves a dir it did not make as it is
    code, checks = doctor(daemon, env, "--notify")
    assert code == 0, json.dumps(checks, indent=1)
    assert list(outcomes(checks)) == [
        "config",
        "state dir",
        "one daemon",
        "session bus",
        "notification server",
        "test notification",
        "daemon",
        "gateway",
        "clock",
        "service",
    ]
    assert set(outcomes(checks).values()) == {"ok"}, checks
    server = checks["notification server"]["data"]
    assert server["server"] == "dunst" and "actions" in server["capabilities"]
    assert checks["gateway"]["data"]["cid"] == daemon.cid()
    assert checks["gateway"]["data"]["backlog"] == 0
    nid = checks["test notification"]["data"]["id"]
    seen = dunst.wait_seen(1)
    assert seen[-1]["summary"] == "unipush-bridge doctor" and int(seen[-1]["id"]) == nid
    wait_for(lambda: dunst.count_displayed() == 0, 5, "the test notification to close")

    text = cli(
        "doctor",
        "--appid",
        daemon.appid,
        "--socket",
        str(daemon.socket),
        "--state-dir",
        str(daemon.socket.parent),
        env=env,
        timeout=60,
    )
    assert text.returncode == 0, text.stdout
    assert text.stdout.splitlines()[-1] == "all checks passed"
    assert text.stdout.splitlines()[4].startswith("ok    notification server  dunst ")


def test_no_notification_server(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> None:
    """issue 14 item 2: a session bus with nobody owning org.freedesktop.Notifications."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon")
    conf = tmp_path / "bus.conf"
    conf.write_text(_bus_conf(tmp_path / "bus"))
    bus = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        daemon = DaemonProc(
            tmp_path / "d", None, appid=appid(), env={"DBUS_SESSION_BUS_ADDRESS": address}
        )
        procs.append(daemon)
        daemon.start()
        code, checks = doctor(daemon, {**env, "DBUS_SESSION_BUS_ADDRESS": address})
    finally:
        bus.send_signal(signal.SIGTERM)
        bus.wait(5)
    assert code == 1
    assert checks["session bus"]["outcome"] == "ok"
    server = checks["notification server"]
    assert server["outcome"] == "fail"
    assert "no notification server on the session bus" in server["detail"]
    assert "dunst" in server["fix"]
    # The rest still runs: the embedded gateway, the daemon and the unit are fine.
    assert checks["daemon"]["outcome"] == checks["gateway"]["outcome"] == "ok"


def test_no_session_bus(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> None:
    """issue 14 item 2: no DBUS_SESSION_BUS_ADDRESS: the fix is importing the environment."""
    daemon = DaemonProc(tmp_path / "d", None, appid=appid())
    procs.append(daemon)
    daemon.start()
    code, checks = doctor(daemon, env)
    assert code == 1
    assert checks["session bus"]["outcome"] == "fail"
    assert "import-environment DBUS_SESSION_BUS_ADDRESS" in checks["session bus"]["fix"]
    assert checks["notification server"]["outcome"] == "skip"


def test_wrong_gateway_token(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> None:
    """issue 14 item 2: the gateway is reachable but refuses the daemon's client token."""
    gw = GatewayProc(tmp_path / "gw", env={"UNIPUSH_BRIDGE_GATEWAY_CLIENT_TOKEN": TOKEN}).start()
    procs.append(gw)
    daemon = DaemonProc(
        tmp_path / "d",
        gw.ws_url,
        appid=appid(),
        env={"UNIPUSH_BRIDGE_CLIENT_TOKEN": "not-the-gateways-token"},
    )
    procs.append(daemon)
    daemon.start(wait_registered=False)
    wait_for(lambda: daemon.status()["connection"]["last_error"], 10, "the refusal")
    code, checks = doctor(daemon, env)
    assert code == 1
    gateway = checks["gateway"]
    assert gateway["outcome"] == "fail"
    assert "reachable, but the daemon is" in gateway["detail"]
    assert "unauthorized" in gateway["detail"]
    assert "client_token" in gateway["fix"]
    assert checks["clock"]["outcome"] == "ok"  # the gateway answered /healthz


def test_stale_socket(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> None:
    """issue 14 item 2: a daemon killed with SIGKILL leaves its socket; nothing answers it."""
    daemon = DaemonProc(tmp_path / "d", None, appid=appid())
    procs.append(daemon)
    daemon.start()
    daemon.kill()
    assert daemon.socket.exists()
    code, checks = doctor(daemon, env)
    assert code == 1
    one = checks["one daemon"]
    assert one["outcome"] == "fail"
    assert f"stale socket {daemon.socket}" in one["detail"]
    assert f"rm {daemon.socket}" in one["fix"]
    assert checks["daemon"]["outcome"] == "fail"


def test_second_daemon(tmp_path: Path, procs: list[Proc], env: dict[str, str]) -> None:
    """issue 14 item 2: two daemons for one appid with two state dirs (the lock cannot see it)."""
    gw = GatewayProc(tmp_path / "gw").start()
    procs.append(gw)
    app = appid()
    first = DaemonProc(tmp_path / "one", gw.ws_url, appid=app)
    second = DaemonProc(tmp_path / "two", gw.ws_url, appid=app)
    procs += [first, second]
    first.start(wait_registered=False)
    second.start(wait_registered=False)
    code, checks = doctor(first, env)
    assert code == 1
    one = checks["one daemon"]
    assert one["outcome"] == "fail"
    assert one["detail"].startswith(f"2 daemons run for appid {app}: ")
    assert {d["pid"] for d in one["data"]["daemons"]} == {first.pid, second.pid}
    assert f"kill {max(first.pid, second.pid)}" in one["fix"]

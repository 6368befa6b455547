"""issue 10 item 11: a damaged store, or a state dir that cannot be written, ends the
daemon (and the gateway) with one line naming the file and the fix, and exit code 2,
which the systemd units' RestartPreventExitStatus covers: no traceback, no restart loop.

Real processes on real files: random bytes, a truncated database, an immutable file
(chattr +i), a directory where the file should be, and a state dir the daemon cannot
write (root without CAP_DAC_OVERRIDE, through setpriv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.procs import CLI, _env
from unipush_bridge.runtime.store import Store

APPID = "__UNI__DESKTOP"
EXIT_STORE = 2
#: Root as an ordinary user: file modes apply to it again.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"]


def run_daemon(
    state_dir: Path, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["run", "--state-dir", str(state_dir), "--socket", str(state_dir / "api.sock")]
    args += ["--embedded-port", "0", "--log-format", "json"]
    env = _env(
        {"UNIPUSH_BRIDGE_SLEEP_BUS": "off", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    )
    return subprocess.run(
        [*(prefix or []), *CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def the_error(res: subprocess.CompletedProcess[str]) -> str:
    """The one line that is not a JSON log line; fails on a traceback or more lines."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """issue 10 item 11: random bytes where the daemon's store should be."""
    state = private_dir(tmp_path / "state")
    db = state / f"{APPID}.sqlite3"
    db.write_bytes(os.urandom(8192))
    res = run_daemon(state)
    assert res.returncode == EXIT_STORE, res.stderr
    assert the_error(res) == (
        f"unipush-bridge run: store {db} is damaged (file is not a database): move it aside "
        f"(mv {db} {db}.damaged) and restart; a new, empty one is made, the rest of {state} "
        "is kept"
    )


def test_a_truncated_database(tmp_path: Path) -> None:
    """issue 10 item 11: a store cut short (a full disk, a bad copy)."""
    state = private_dir(tmp_path / "state")
    db = state / f"{APPID}.sqlite3"
    store = Store(db)
    for n in range(200):
        store.remember_shown(f"id{n}", "push", None, "t" * 200, "c" * 400, {}, 1000)
    store.close()
    os.truncate(db, db.stat().st_size // 3)
    res = run_daemon(state)
    assert res.returncode == EXIT_STORE, res.stderr
    line = the_error(res)
    assert line.startswith(f"unipush-bridge run: store {db} is damaged (")
    assert "move it aside" in line


def test_a_directory_where_the_database_should_be(tmp_path: Path) -> None:
    """issue 10 item 11: the store's path is taken by a directory."""
    state = private_dir(tmp_path / "state")
    (state / f"{APPID}.sqlite3").mkdir()
    res = run_daemon(state)
    assert res.returncode == EXIT_STORE, res.stderr
    assert the_error(res) == (
        f"unipush-bridge run: store {state / f'{APPID}.sqlite3'} is a directory, not a "
        "database: move it aside and restart"
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs root and chattr")
def test_an_immutable_database(tmp_path: Path) -> None:
    """issue 10 item 11: a store that cannot be written (chattr +i)."""
    state = private_dir(tmp_path / "state")
    db = state / f"{APPID}.sqlite3"
    Store(db).close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if subprocess.run(["chattr", "+i", str(db)], check=False).returncode != 0:
        pytest.skip("this file system has no immutable attribute")
    try:
        res = run_daemon(state)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert res.returncode == EXIT_STORE, res.stderr
    line = the_error(res)
    assert line.startswith(f"unipush-bridge run: {db} cannot be written (")
    assert "chattr -i" in line


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_a_state_dir_it_cannot_write(tmp_path: Path) -> None:
    """issue 10 item 11: the state dir is not writable for the daemon's user."""
    state = private_dir(tmp_path / "state")
    state.chmod(0o500)
    res = run_daemon(state, NO_DAC)
    assert res.returncode == EXIT_STORE, res.stderr
    assert the_error(res).startswith(
        f"unipush-bridge run: state dir {state} is not writable (Permission denied): "
    )


def test_the_gateway_on_a_damaged_store(tmp_path: Path) -> None:
    """issue 10 item 11: the stand-alone gateway opens its store with the same opener."""
    data = private_dir(tmp_path / "gw")
    (data / "gateway.sqlite3").write_bytes(os.urandom(4096))
    res = subprocess.run(
        [*CLI, "gateway", "--data-dir", str(data), "--port", "0", "--log-format", "json"],
        capture_output=True,
        text=True,
        env=_env(None),
        timeout=30,
        check=False,
    )
    assert res.returncode == EXIT_STORE, res.stderr
    assert the_error(res).startswith(
        f"unipush-bridge gateway: store {data / 'gateway.sqlite3'} is damaged (file is not a "
        "database): move it aside"
    )


def test_the_units_do_not_restart_on_a_damaged_store() -> None:
    """issue 10 item 11: exit code 2 is the one the packaged units never restart after."""
    root = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
    for unit in ("unipush-bridge.service", "unipush-bridge-gateway.service"):
        lines = (root / unit).read_text().splitlines()
        (prevent,) = [line for line in lines if line.startswith("RestartPreventExitStatus=")]
        assert str(EXIT_STORE) in prevent.split("=", 1)[1].split(), unit

"""issue 10 item 21: a full disk under the state dir reads "state dir full: <dir>" in
status, not ``internal error: OperationalError``.

Real: the daemon's state dir is a tiny tmpfs (mounted here, so root only), filled to
the last byte while the daemon runs; pushes from a real gateway then cannot be
recorded.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import DaemonProc, GatewayProc, Proc, cli, wait_for


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> None:
    """Write until the file system says ENOSPC."""
    with (directory / "filler").open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)


def test_status_says_state_dir_full(tmp_path: Path, tiny_fs: Path) -> None:
    """issue 10 item 21: SQLITE_FULL while recording a push names the state dir."""
    procs: list[Proc] = []
    try:
        gateway = GatewayProc(tmp_path / "gw").start()
        procs.append(gateway)
        state = tiny_fs / "state"
        daemon = DaemonProc(state, gateway.ws_url, env={"UNIPUSH_BRIDGE_SLEEP_BUS": "off"})
        procs.append(daemon.start())
        cid = daemon.cid()
        fill(tiny_fs)
        payload = {"fill": "x" * 700}

        def full() -> str | None:
            for _ in range(25):  # each a new row and index entry: the file must grow
                body = {"push_clientid": cid, "title": "t", "content": "c", "payload": payload}
                gateway.send(body)
            error: str | None = daemon.status()["connection"]["last_error"]
            return error if error and ("full" in error or "internal" in error) else None

        error = wait_for(full, 15, "the daemon to run out of space")
        assert error.startswith(f"state dir full: {state} ("), error
        res = cli("status", "--socket", str(daemon.socket))
        assert f"(last error: state dir full: {state} (" in res.stdout, res.stdout
        assert "internal error" not in res.stdout
        assert "Traceback" not in daemon.log_path.read_text()
        # Space again: the redelivered pushes are recorded and the link recovers.
        (tiny_fs / "filler").unlink()
        wait_for(lambda: daemon.status()["connection"]["state"] == "connected", 15, "reconnect")
    finally:
        for proc in reversed(procs):
            proc.kill()

"""issue 12 item 11 with real processes: `notify --delay 1` on a daemon with no
notification server answers ok (the delay is accepted), and when it falls due the
history says "not shown" with the reason and status counts it (and the retry that
waits for a server), where before only a log line was left."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import DaemonProc, Proc, cli, wait_for

NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="upn-"))  # short: AF_UNIX paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def history(sock: Path) -> list[dict[str, Any]]:
    res = cli("history", "--json", "--socket", str(sock), env=NO_SERVER)
    assert res.returncode == 0, res.stderr
    entries: list[dict[str, Any]] = json.loads(res.stdout)
    return entries


def test_a_delayed_notify_with_no_server_is_recorded_as_not_shown(
    base: Path, procs: list[Proc]
) -> None:
    """issue 12 item 11."""
    daemon = DaemonProc(base / "state", None, env=NO_SERVER)
    procs.append(daemon)
    daemon.start(wait_registered=False)
    res = cli(
        "notify",
        "--content",
        "backup done",
        "--delay",
        "1",
        "--socket",
        str(daemon.socket),
        env=NO_SERVER,
    )
    assert res.returncode == 0, res.stderr
    (entry,) = wait_for(lambda: history(daemon.socket), 15, "the history entry")
    assert entry["shown"] is False
    assert entry["content"] == "backup done"
    assert "notification server" in entry["not_shown"]
    status = daemon.status()
    assert status["counters"]["not_shown"] == 1
    assert status["waiting_for_notification_server"] == 1
    text = cli("history", "--socket", str(daemon.socket), env=NO_SERVER).stdout
    assert "backup done  (not shown: " in text

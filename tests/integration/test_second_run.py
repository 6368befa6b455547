"""issue 12 item 8: a second `run` for an appid whose daemon already runs (with the
same state dir: the instance lock; with another one: its embedded gateway's port)
says that this appid's daemon runs and how to talk to it or stop it, instead of
"pass --embedded-port 0", which starts a second daemon (and a second cid) for the
same appid. Exit code 1, as documented. Two real daemon processes on loopback."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import Proc, cli, free_port, wait_for

NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="up2-"))  # short: AF_UNIX paths are short
    (path / "rt").mkdir(mode=0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def env(base: Path) -> dict[str, str]:
    """As `bash scripts/dev.sh run` does it: the default socket, under XDG_RUNTIME_DIR."""
    return {**NO_SERVER, "XDG_RUNTIME_DIR": str(base / "rt")}


def first_daemon(base: Path, procs: list[Proc], port: int) -> Proc:
    daemon = Proc(
        [
            "run",
            "--state-dir",
            str(base / "a"),
            "--embedded-port",
            str(port),
            "--log-format",
            "json",
        ],
        base / "first.log",
        env(base),
    ).start()
    procs.append(daemon)
    sock = base / "rt" / "unipush-bridge" / "__UNI__DESKTOP.sock"
    wait_for(lambda: sock.exists() or not daemon.alive(), 15, "the first daemon's socket")
    assert daemon.alive(), (base / "first.log").read_text()
    return daemon


def commands(text: str) -> list[list[str]]:
    return [shlex.split(c) for c in re.findall(r"`([^`]+)`", text)]


def assert_leads_to_the_running_daemon(text: str, base: Path, pid: int, run: bool) -> None:
    """The message names the running daemon and gives commands that work against it."""
    assert "a daemon for appid __UNI__DESKTOP is already running" in text
    assert f"pid {pid}" in text
    assert "--embedded-port 0" not in text
    cmds = commands(text)
    status = next(c for c in cmds if "status" in c)
    listen = next(c for c in cmds if "listen" in c)
    assert "--json" in listen
    assert [c for c in cmds if c[0] == "kill"] == [["kill", str(pid)]]
    if not run:
        return
    res = subprocess.run(
        [*status, "--json"],
        capture_output=True,
        text=True,
        env={**env(base), "PATH": ""},
        timeout=20,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert f'"pid": {pid}' in res.stdout


def test_second_run_with_the_same_state_dir(base: Path, procs: list[Proc]) -> None:
    """issue 12 item 8: the instance lock refuses it, with status/listen/stop commands."""
    port = free_port()
    first = first_daemon(base, procs, port)
    res = cli(
        "run",
        "--state-dir",
        str(base / "a"),
        "--embedded-port",
        str(port),
        env=env(base),
        timeout=20,
    )
    assert res.returncode == 1
    assert "with state dir" in res.stderr
    assert_leads_to_the_running_daemon(res.stderr, base, first.pid, run=True)
    assert first.alive()


def test_second_run_with_another_state_dir_on_the_same_port(base: Path, procs: list[Proc]) -> None:
    """issue 12 item 8: the port's holder is this appid's daemon (found over its local
    API socket): said so, with the commands, not "pass --embedded-port 0"."""
    port = free_port()
    first = first_daemon(base, procs, port)
    res = cli(
        "run",
        "--state-dir",
        str(base / "b"),
        "--embedded-port",
        str(port),
        env=env(base),
        timeout=20,
    )
    assert res.returncode == 1
    assert f"its embedded gateway holds port {port}" in res.stderr
    assert f"state dir {base / 'a'}" in res.stderr
    assert_leads_to_the_running_daemon(res.stderr, base, first.pid, run=False)
    assert first.alive()


def test_a_port_held_by_something_else_still_says_embedded_port_0(base: Path) -> None:
    """Not a daemon of this appid: the old advice stands."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        res = cli(
            "run",
            "--state-dir",
            str(base / "c"),
            "--embedded-port",
            str(port),
            env=env(base),
            timeout=20,
        )
    assert res.returncode == 1
    assert f"port {port} is taken by another program: pass --embedded-port 0" in res.stderr

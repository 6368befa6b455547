"""Hostile and odd input to the command line, as real processes: config files that
are no regular file or no UTF-8, variables that cannot be parsed, numbers that are
no number, a reader that goes away, a socket path AF_UNIX cannot hold, text from a
service manager. Each ends in one line naming its cause and an exit code, never a
traceback or a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import CLI, DaemonProc, Listener, _env, cli, wait_listeners

#: A bus address that leads nowhere: the daemon runs without a notification server.
NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}


def _config(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "not-utf8":
        path.write_bytes(b'appid = "\xff"\n')
    elif kind == "bom":
        path.write_bytes(b'\xef\xbb\xbfappid = "x"\n')
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("fifo", "not a regular file"),
        ("device", "not a regular file"),
        ("not-utf8", "not UTF-8 at line 1"),
        ("bom", "byte order mark"),
        ("loop", "symbolic links"),
    ],
)
def test_an_odd_config_file_is_a_config_error(tmp_path: Path, kind: str, says: str) -> None:
    """A FIFO in the config's place hung `run` (and `doctor`, and a service start) for
    good; invalid UTF-8 ended in a UnicodeDecodeError traceback; a symlink loop was
    "not found"."""
    path = _config(tmp_path, kind)
    res = cli("run", "--print-config", "--config", str(path), timeout=15)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert str(path) in res.stderr and says in res.stderr, res.stderr


def test_a_default_config_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "unipush-bridge").mkdir()
    os.mkfifo(tmp_path / "unipush-bridge" / "gateway.toml")
    res = cli("gateway", env={"XDG_CONFIG_HOME": str(tmp_path)}, timeout=15)
    assert res.returncode == 2, res.stderr
    assert "gateway.toml: cannot read: not a regular file" in res.stderr


@pytest.mark.parametrize(
    ("command", "var"),
    [
        (["run", "--print-config"], "UNIPUSH_BRIDGE_WEB_ORIGINS"),
        (["run", "--print-config"], "UNIPUSH_BRIDGE_APP_COMMAND"),
        (["gateway"], "UNIPUSH_BRIDGE_GATEWAY_ALLOWED_HOSTS"),
    ],
)
def test_a_list_variable_that_is_not_json_is_named(command: list[str], var: str) -> None:
    """pydantic-settings' SettingsError went up as a traceback with exit 1."""
    res = cli(*command, env={var: "not json"}, timeout=15)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert f"environment variable {var}" in res.stderr and "not JSON" in res.stderr, res.stderr


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    proc = DaemonProc(tmp_path_factory.mktemp("hostile") / "daemon", None, env=NO_SERVER)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _push(daemon: DaemonProc, title: str) -> None:
    ws = str(daemon.status()["gateway"])
    base = "http://" + ws.removeprefix("ws://").split("/", 1)[0]
    sent = cli(
        "send",
        "--gateway-url",
        base,
        "--to",
        daemon.cid(),
        "--title",
        title,
        "--content",
        "c",
        env=NO_SERVER,
    )
    assert sent.returncode == 0, sent.stderr


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_listen_into_a_reader_that_went_away_ends_at_once(
    daemon: DaemonProc, tmp_path: Path, json_lines: bool
) -> None:
    """`listen | head -1`: once head was gone, listen went on for good, printing a
    BrokenPipeError traceback for every push (and acknowledging each one it had not
    shown). Now it ends with exit 0, and the push it could not write is not
    acknowledged: the next listener gets it."""
    argv = [*CLI, "listen", "--socket", str(daemon.socket), *(["--json"] if json_lines else [])]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(NO_SERVER)
    )
    try:
        wait_listeners(daemon, 1)
        _push(daemon, "first")
        assert proc.stdout is not None
        assert b"first" in proc.stdout.readline()
        proc.stdout.close()  # head -1 has its line
        _push(daemon, "second")
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err, err
    later = Listener(daemon.socket, tmp_path / "later.log", NO_SERVER).start()
    try:
        (event,) = later.wait_events(1)
        assert event["data"]["title"] == "second"
    finally:
        later.stop()
    wait_listeners(daemon, 0)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["cid", "--timeout", "inf"], "--timeout"),
        (["cid", "--timeout=nan"], "--timeout"),
        (["cid", "--timeout", "1e400"], "--timeout"),
        (["notify", "--content", "x", "--delay", "1e400"], "--delay"),
        (["notify", "--content", "x", "--title", "t", "--delay=1e999"], "--delay"),
    ],
)
def test_a_number_that_is_not_finite_is_a_usage_error(
    daemon: DaemonProc, argv: list[str], flag: str
) -> None:
    """float() takes inf, nan and 1e400: socket.settimeout raised OverflowError or
    ValueError, json.dumps 'Out of range float values', each a traceback with exit 1."""
    res = cli(*argv, "--socket", str(daemon.socket), env=NO_SERVER)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert flag in res.stderr, res.stderr


def _long_dir(tmp_path: Path) -> Path:
    long = tmp_path / ("d" * 100)
    long.mkdir(mode=0o700)
    return long


def test_run_with_a_socket_path_too_long_for_af_unix_is_a_config_error(tmp_path: Path) -> None:
    """The daemon started its gateway, then failed to bind with 'AF_UNIX path too long
    (OSError)', exit 1 (which systemd restarts), naming neither the path nor the key.
    Now it is exit 2 before anything starts, and --print-config says it too."""
    sock = _long_dir(tmp_path) / "api.sock"
    for extra in (["--print-config"], ["--embedded-port", "0"]):
        res = cli(
            "run",
            "--socket",
            str(sock),
            "--state-dir",
            str(tmp_path / "s"),
            *extra,
            env=NO_SERVER,
            timeout=20,
        )
        assert res.returncode == 2, res.stderr
        assert "key 'socket'" in res.stderr and str(sock) in res.stderr, res.stderr
        assert "gateway listening" not in res.stderr


def test_run_with_a_runtime_dir_too_long_names_xdg_runtime_dir(tmp_path: Path) -> None:
    runtime = _long_dir(tmp_path)
    res = cli("run", "--print-config", env={**NO_SERVER, "XDG_RUNTIME_DIR": str(runtime)})
    assert res.returncode == 2, res.stderr
    assert "XDG_RUNTIME_DIR" in res.stderr, res.stderr


@pytest.mark.parametrize("command", [["status"], ["cid"], ["listen"]])
def test_a_client_socket_path_too_long_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    sock = _long_dir(tmp_path) / "api.sock"
    res = cli(*command, "--socket", str(sock), env=NO_SERVER)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "--socket" in res.stderr and "too long" in res.stderr, res.stderr


def test_service_status_escapes_what_the_service_manager_says(tmp_path: Path) -> None:
    """StatusText is the daemon's STATUS=, which holds the gateway's close reason (any
    text a gateway sends): `service status` printed it, and every other property, raw."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(
        "#!/bin/sh\nprintf 'LoadState=loaded\\nUnitFileState=enabled\\nActiveState=active\\n"
        "StatusText=link backing_off (last error: closed by the gateway (4000: \\033]0;x\\007"
        "\\033[2J))\\n'\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path)}
    res = cli("service", "status", "--platform", "systemd", env=env)
    assert "closed by the gateway" in res.stdout, res.stdout
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout, repr(res.stdout)
    assert "\\x1b]0;x\\x07" in res.stdout


def test_ctrl_c_on_a_one_shot_command_exits_130(tmp_path: Path) -> None:
    """`CID=$(unipush-bridge cid)` cut short by Ctrl-C exited 0 with no cid: a script
    went on with an empty one. A one-shot command says it was interrupted (130)."""
    daemon = DaemonProc(tmp_path / "d", "ws://127.0.0.1:9/ws", env=NO_SERVER)
    daemon.start(wait_registered=False)
    try:
        argv = [*CLI, "cid", "--socket", str(daemon.socket), "--timeout", "30"]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(NO_SERVER)
        )
        time.sleep(1.0)  # cid is waiting on the daemon's answer (30 s at most)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        daemon.stop()
    assert proc.returncode == 130, (out, err)
    assert b"Traceback" not in err and out == b""

"""Hostile and odd input to the command line, as real processes: config files that
are no regular file or no UTF-8, variables that cannot be parsed, numbers that are
no number, a reader that goes away, a socket path AF_UNIX cannot hold, text from a
service manager. Each ends in one line naming its cause and an exit code, never a
traceback or a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.procs import cli


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

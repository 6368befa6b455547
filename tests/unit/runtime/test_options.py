"""options.py (DaemonOptions), DaemonSettings.options() that builds them, and paths.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge import config, paths
from unipush_bridge.config import DaemonSettings
from unipush_bridge.runtime.options import DaemonOptions

OPTION_FIELDS = {f.name for f in dataclasses.fields(DaemonOptions)}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("UNIPUSH_BRIDGE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))


def load(flags: dict[str, Any]) -> DaemonSettings:
    """Settings as `unipush-bridge run` builds them (no config file)."""
    return config.load(DaemonSettings, None, "daemon", flags)


def sample(**changes: Any) -> DaemonOptions:
    values: dict[str, Any] = {
        "gateway": "ws://gw:1/ws",
        "appid": "__UNI__A",
        "state_dir": Path("/var/lib/ub state"),
        "socket": Path("/run/ub/__UNI__A.sock"),
        "app_name": "应用",
        "app_command": ("myapp", "--from-push"),
        "client_token": "client-token-0123456789",
        "embedded_port": 9001,
        "ping_interval": 12.5,
        "ping_timeout": 7.0,
        "notify_timeout": 3.0,
        "flood_threshold": 4,
        "flood_window": 2.5,
        "sleep_bus": "session",
        "log_level": "debug",
        "log_format": "json",
        "reload_argv": ("/usr/bin/python3", "-m", "unipush_bridge.cli", "run", "--print-config"),
    }
    values.update(changes)
    return DaemonOptions(**values)


# DaemonOptions: JSON both ways ----------------------------------------------------------


def test_json_round_trip_keeps_paths_and_tuples() -> None:
    opts = sample()
    back = DaemonOptions.from_json(opts.to_json())
    assert back == opts
    assert isinstance(back.state_dir, Path)
    assert isinstance(back.socket, Path)
    assert isinstance(back.app_command, tuple)
    assert isinstance(back.reload_argv, tuple)


def test_json_round_trip_with_nones_and_empty_tuples() -> None:
    opts = sample(gateway=None, client_token=None, app_command=(), reload_argv=())
    assert DaemonOptions.from_json(opts.to_json()) == opts


def test_to_json_is_plain_json_with_every_field() -> None:
    data = json.loads(sample().to_json())
    assert set(data) == OPTION_FIELDS
    assert data["state_dir"] == "/var/lib/ub state"
    assert data["socket"] == "/run/ub/__UNI__A.sock"
    assert data["app_command"] == ["myapp", "--from-push"]
    assert data["app_name"] == "应用"
    assert data["gateway"] == "ws://gw:1/ws"


def test_from_json_without_reload_argv_gets_an_empty_tuple() -> None:
    data = json.loads(sample().to_json())
    del data["reload_argv"]
    assert DaemonOptions.from_json(json.dumps(data)) == sample(reload_argv=())


def test_from_json_rejects_unknown_keys() -> None:
    data = json.loads(sample().to_json())
    data["zeta"] = 1
    data["alpha"] = True
    with pytest.raises(ValueError) as info:
        DaemonOptions.from_json(json.dumps(data))
    assert str(info.value) == "unknown daemon options: alpha, zeta"


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample().appid = "other"  # type: ignore[misc]


# DaemonOptions.keeping ------------------------------------------------------------------


def test_keeping_takes_the_listed_keys_from_old() -> None:
    old = sample()
    new = sample(
        appid="__UNI__B",
        embedded_port=1,
        app_name="new name",
        log_level="warning",
        reload_argv=("other",),
    )
    kept = new.keeping(old, ("appid", "embedded_port", "reload_argv"))
    assert kept == sample(app_name="new name", log_level="warning")
    # neither input changes
    assert new.appid == "__UNI__B"
    assert old.app_name == "应用"


def test_keeping_nothing_is_an_equal_copy() -> None:
    opts = sample()
    assert opts.keeping(sample(appid="x"), ()) == opts


def test_keeping_an_unknown_key_raises() -> None:
    with pytest.raises(AttributeError):
        sample().keeping(sample(), ("nope",))


def test_restart_only_keys_are_declared_with_the_settings() -> None:
    from unipush_bridge.runtime.daemon import RESTART_ONLY

    assert set(RESTART_ONLY) == {
        "gateway",
        "appid",
        "state_dir",
        "socket",
        "client_token",
        "embedded_port",
        "sleep_bus",
        "listener_timeout",
        "max_local_connections",  # the local API server is made once, at start
        "web_port",  # issue 15: the web endpoint binds at start
        "web_host",
        "web_origins",
        "web_rate",
    }


# DaemonSettings.options(): no drift between the two --------------------------------------


def test_options_fills_every_option_field() -> None:
    """options() passes every setting by name: a value set in the settings reaches the
    daemon rather than a default there."""
    values = {f.name: f for f in DaemonOptions.settings()}
    opts = load({"embedded_port": 1234, "app_name": "N"}).options(("argv",))
    assert {f.name for f in dataclasses.fields(opts)} == set(values) | {"reload_argv"}
    assert (opts.embedded_port, opts.app_name, opts.reload_argv) == (1234, "N", ("argv",))


def test_every_setting_reaches_an_option() -> None:
    """DaemonSettings is built from DaemonOptions: one declaration, no drift."""
    assert set(DaemonSettings.model_fields) == OPTION_FIELDS - {"reload_argv"}
    port = DaemonSettings.model_fields["embedded_port"]
    assert port.default == 8787 and port.description


def test_settings_rules_come_from_the_declaration() -> None:
    with pytest.raises(config.ConfigError, match=r"embedded_port.*less than or equal to 65535"):
        load({"embedded_port": 70000})
    with pytest.raises(config.ConfigError, match=r"appid.*pattern"):
        load({"appid": "no spaces"})


def test_options_carries_each_value(tmp_path: Path) -> None:
    settings = load(
        {
            "gateway": " ws://gw:2 ",
            "appid": "__UNI__X",
            "state_dir": tmp_path / "st",
            "socket": tmp_path / "s.sock",
            "app_name": "Name",
            "app_command": ["app", "-x"],
            "client_token": "tok",
            "embedded_port": 0,
            "ping_interval": 1.5,
            "ping_timeout": 2.5,
            "notify_timeout": 60,
            "flood_threshold": 0,
            "flood_window": 0.5,
            "sleep_bus": "off",
            "log_level": "error",
            "log_format": "console",
        }
    )
    opts = settings.options(("a", "b"))
    assert opts == DaemonOptions(
        gateway="ws://gw:2",
        appid="__UNI__X",
        state_dir=tmp_path / "st",
        socket=tmp_path / "s.sock",
        app_name="Name",
        app_command=("app", "-x"),
        client_token="tok",
        embedded_port=0,
        ping_interval=1.5,
        ping_timeout=2.5,
        notify_timeout=60.0,
        flood_threshold=0,
        flood_window=0.5,
        sleep_bus="off",
        log_level="error",
        log_format="console",
        reload_argv=("a", "b"),
    )
    assert DaemonOptions.from_json(opts.to_json()) == opts


def test_options_defaults(tmp_path: Path) -> None:
    opts = load({}).options()
    assert opts.gateway is None
    assert opts.appid == "__UNI__DESKTOP"
    assert opts.state_dir == tmp_path / "state" / "unipush-bridge"
    assert opts.socket_path == tmp_path / "run" / "unipush-bridge" / "__UNI__DESKTOP.sock"
    assert opts.app_command == ()
    assert opts.reload_argv == ()
    assert DaemonOptions.from_json(opts.to_json()) == opts


def test_options_socket_follows_the_appid() -> None:
    opts = load({"appid": "__UNI__Q"}).options()
    assert opts.socket_path == paths.default_socket("__UNI__Q")


# paths.py, re-exported by config.py -------------------------------------------------------


def test_config_reexports_the_paths_names() -> None:
    assert config.APP is paths.APP == "unipush-bridge"
    assert config.DEFAULT_APPID is paths.DEFAULT_APPID == "__UNI__DESKTOP"
    assert config.runtime_dir is paths.runtime_dir
    assert config.default_socket is paths.default_socket


def test_runtime_dir_under_xdg_runtime_dir(tmp_path: Path) -> None:
    assert paths.runtime_dir() == tmp_path / "run" / "unipush-bridge"
    assert paths.default_socket("__UNI__A") == tmp_path / "run" / "unipush-bridge" / "__UNI__A.sock"


@pytest.mark.parametrize("value", [None, ""])
def test_runtime_dir_without_xdg_runtime_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("XDG_RUNTIME_DIR")
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", value)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)
    (tmp_path / "tmp").mkdir()
    assert paths.runtime_dir() == tmp_path / "tmp" / f"unipush-bridge-{os.getuid()}"


def test_daemon_side_modules_do_not_import_the_validation_stack() -> None:
    code = (
        "import sys\n"
        "import unipush_bridge.runtime.daemon, unipush_bridge.clients\n"
        "import unipush_bridge.runtime.options\n"
        "heavy = ('pydantic', 'pydantic_core', 'pydantic_settings')\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in heavy or m == 'unipush_bridge.config'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"

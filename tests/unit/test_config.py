"""config.py (file < env < flags) and gateway.server.GatewayConfig.check()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unipush_bridge import config
from unipush_bridge.config import ConfigError, DaemonSettings, GatewaySettings
from unipush_bridge.gateway import server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("UNIPUSH_BRIDGE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# sources and precedence -----------------------------------------------------------------


def test_defaults_when_the_default_file_is_absent(tmp_path: Path) -> None:
    s = config.load(DaemonSettings, None, "daemon", {})
    assert s.appid == "__UNI__DESKTOP"
    assert s.gateway is None
    assert s.embedded_port == 8787
    assert s.client_token is None
    assert s.app_command == []
    assert s.log_level == "info"
    assert s.state_dir == tmp_path / "state" / "unipush-bridge"


def test_default_path_follows_platformdirs(tmp_path: Path) -> None:
    expected = tmp_path / "config" / "unipush-bridge" / "daemon.toml"
    assert config.default_config_path("daemon") == expected


def test_default_file_is_read_when_present(tmp_path: Path) -> None:
    write(config.default_config_path("daemon"), 'appid = "fromdefault"\nembedded_port = 9100\n')
    s = config.load(DaemonSettings, None, "daemon", {})
    assert (s.appid, s.embedded_port) == ("fromdefault", 9100)


def test_file_values(tmp_path: Path) -> None:
    f = write(
        tmp_path / "d.toml",
        'appid = "fromfile"\ngateway = "ws://gw:1"\napp_command = ["app", "--x"]\n'
        'log_level = "debug"\n',
    )
    s = config.load(DaemonSettings, f, "daemon", {})
    assert s.appid == "fromfile"
    assert s.gateway == "ws://gw:1"
    assert s.app_command == ["app", "--x"]
    assert s.log_level == "debug"


def test_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "d.toml", 'appid = "fromfile"\nembedded_port = 9100\n')
    monkeypatch.setenv("UNIPUSH_BRIDGE_APPID", "fromenv")
    s = config.load(DaemonSettings, f, "daemon", {})
    assert s.appid == "fromenv"
    assert s.embedded_port == 9100  # not overridden, so the file's value stays


def test_flags_beat_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "d.toml", 'appid = "fromfile"\n')
    monkeypatch.setenv("UNIPUSH_BRIDGE_APPID", "fromenv")
    s = config.load(DaemonSettings, f, "daemon", {"appid": "fromflag"})
    assert s.appid == "fromflag"


def test_none_flags_do_not_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "d.toml", 'gateway = "ws://fromfile:1"\n')
    monkeypatch.setenv("UNIPUSH_BRIDGE_APPID", "fromenv")
    s = config.load(DaemonSettings, f, "daemon", {"appid": None, "gateway": None})
    assert s.appid == "fromenv"
    assert s.gateway == "ws://fromfile:1"


def test_gateway_url_is_stripped_and_blank_means_embedded(tmp_path: Path) -> None:
    s = config.load(DaemonSettings, None, "daemon", {"gateway": "  ws://h:1  "})
    assert s.gateway == "ws://h:1"
    s = config.load(DaemonSettings, None, "daemon", {"gateway": "   "})
    assert s.gateway is None


def test_gateway_settings_env_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = write(tmp_path / "g.toml", 'host = "127.0.0.2"\nport = 9000\n')
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_PORT", "9001")
    monkeypatch.setenv("UNIPUSH_BRIDGE_PORT", "1")  # not the gateway's prefix
    s = config.load(GatewaySettings, f, "gateway", {})
    assert (s.host, s.port) == ("127.0.0.2", 9001)
    assert s.data_dir == tmp_path / "state" / "unipush-bridge" / "gateway"
    s = config.load(GatewaySettings, f, "gateway", {"port": 9002})
    assert s.port == 9002


def test_gateway_env_does_not_leak_into_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_PORT", "9001")
    s = config.load(DaemonSettings, None, "daemon", {})
    assert s.gateway is None
    assert s.embedded_port == 8787


# errors ---------------------------------------------------------------------------------


def test_unknown_key_in_the_file(tmp_path: Path) -> None:
    f = write(tmp_path / "d.toml", 'appid = "a"\nbogus_key = 1\n')
    with pytest.raises(ConfigError) as info:
        config.load(DaemonSettings, f, "daemon", {})
    text = str(info.value)
    assert str(f) in text
    assert "'bogus_key'" in text
    assert "unknown key" in text


def test_gateway_key_is_unknown_to_the_gateway_file(tmp_path: Path) -> None:
    f = write(tmp_path / "g.toml", "embedded_port = 1\n")
    with pytest.raises(ConfigError, match=r"'embedded_port'.*unknown key"):
        config.load(GatewaySettings, f, "gateway", {})


@pytest.mark.parametrize(
    ("toml", "key", "rule"),
    [
        (f'appid = "{"a" * 65}"\n', "appid", "at most 64 characters"),
        ('appid = "has space"\n', "appid", "pattern"),
        ("embedded_port = 70000\n", "embedded_port", "less than or equal to 65535"),
        ('embedded_port = "x"\n', "embedded_port", "valid integer"),
        ('gateway = "ftp://x"\n', "gateway", "must start with ws://"),
        ('gateway = "ws://"\n', "gateway", "no host"),
        ('log_level = "loud"\n', "log_level", "'debug'"),
        ("ping_interval = 0\n", "ping_interval", "greater than 0"),
        ("notify_timeout = 61\n", "notify_timeout", "less than or equal to 60"),
    ],
)
def test_bad_file_value_names_the_key(tmp_path: Path, toml: str, key: str, rule: str) -> None:
    f = write(tmp_path / "d.toml", toml)
    with pytest.raises(ConfigError) as info:
        config.load(DaemonSettings, f, "daemon", {})
    text = str(info.value)
    assert f"key {key!r}" in text
    assert f"UNIPUSH_BRIDGE_{key.upper()}" in text
    assert rule in text


def test_bad_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        config.load(GatewaySettings, None, "gateway", {})
    text = str(info.value)
    assert "key 'port'" in text
    assert "UNIPUSH_BRIDGE_GATEWAY_PORT" in text


def test_bad_flag_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"key 'embedded_port'.*less than or equal to 65535"):
        config.load(DaemonSettings, None, "daemon", {"embedded_port": 70000})


def test_short_gateway_secret(tmp_path: Path) -> None:
    f = write(tmp_path / "g.toml", 'server_secret = "short"\n')
    with pytest.raises(ConfigError, match=r"key 'server_secret'.*at least 16 characters"):
        config.load(GatewaySettings, f, "gateway", {})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    f = write(tmp_path / "broken.toml", "appid = \n")
    with pytest.raises(ConfigError) as info:
        config.load(DaemonSettings, f, "daemon", {})
    assert str(info.value).startswith(f"{f}: not valid TOML")


def test_explicit_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        config.load(DaemonSettings, f, "daemon", {})
    assert str(info.value) == f"{f}: config file not found"


def test_invalid_default_file_is_reported(tmp_path: Path) -> None:
    f = write(config.default_config_path("gateway"), "port = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(GatewaySettings, None, "gateway", {})
    assert f.exists()


# GatewayConfig.check() ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.8.9.10"])
def test_loopback_needs_no_secrets(host: str) -> None:
    server.GatewayConfig(host=host).check()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org", ""])
def test_beyond_loopback_needs_both_secrets(host: str) -> None:
    with pytest.raises(server.ConfigError) as info:
        server.GatewayConfig(host=host).check()
    text = str(info.value)
    assert text.startswith(f"host: {host!r} is not a loopback address")
    assert "server_secret and client_token" in text


def test_beyond_loopback_names_the_missing_one() -> None:
    with pytest.raises(server.ConfigError) as info:
        server.GatewayConfig(host="0.0.0.0", server_secret="s" * 16).check()
    assert "client_token" in str(info.value)
    assert "server_secret" not in str(info.value)
    with pytest.raises(server.ConfigError) as info:
        server.GatewayConfig(host="0.0.0.0", client_token="c" * 16).check()
    assert "server_secret" in str(info.value)
    assert "client_token" not in str(info.value)


def test_beyond_loopback_with_both_secrets() -> None:
    server.GatewayConfig(host="0.0.0.0", server_secret="s" * 16, client_token="c" * 16).check()

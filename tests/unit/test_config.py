"""config.py (file < env < flags), GatewaySettings.gateway_config() and
gateway.access.GatewayConfig.check()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unipush_bridge import config, errors
from unipush_bridge.config import ConfigError, DaemonSettings, GatewaySettings
from unipush_bridge.gateway import access, server
from unipush_bridge.gateway.access import AppSecrets, GatewayConfig


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
    assert s.app_command == ()
    assert s.log_level == "info"
    assert s.state_dir == tmp_path / "state" / "unipush-bridge"


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_path_setting_is_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    """UNIPUSH_BRIDGE_STATE_DIR= read as the path "." put the daemon's state (its cid,
    its inbox) wherever the command was started from. Empty is not set, as for the
    gateway's URL: the default, or none."""
    monkeypatch.setenv("UNIPUSH_BRIDGE_STATE_DIR", empty)
    monkeypatch.setenv("UNIPUSH_BRIDGE_SOCKET", empty)
    s = config.load(DaemonSettings, None, "daemon", {})
    assert s.state_dir == tmp_path / "state" / "unipush-bridge"
    assert s.socket is None
    toml = write(tmp_path / "gw.toml", f'data_dir = "{empty}"\n')
    g = config.load(GatewaySettings, toml, "gateway", {})
    assert g.data_dir == tmp_path / "state" / "unipush-bridge" / "gateway"


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
    assert s.app_command == ("app", "--x")
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
    GatewayConfig(host=host).check()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org", ""])
def test_beyond_loopback_needs_both_secrets(host: str) -> None:
    with pytest.raises(access.ConfigError) as info:
        GatewayConfig(host=host).check()
    text = str(info.value)
    assert text.startswith(f"host: {host!r} is not a loopback address")
    assert "server_secret and client_token" in text


def test_beyond_loopback_names_the_missing_one() -> None:
    with pytest.raises(access.ConfigError) as info:
        GatewayConfig(host="0.0.0.0", server_secret="s" * 16).check()
    assert "client_token" in str(info.value)
    assert "server_secret" not in str(info.value)
    with pytest.raises(access.ConfigError) as info:
        GatewayConfig(host="0.0.0.0", client_token="c" * 16).check()
    assert "server_secret" in str(info.value)
    assert "client_token" not in str(info.value)


def test_beyond_loopback_with_both_secrets() -> None:
    GatewayConfig(host="0.0.0.0", server_secret="s" * 16, client_token="c" * 16).check()


def test_server_reexports_the_access_names() -> None:
    assert server.GatewayConfig is GatewayConfig
    # One ConfigError for the whole package: the CLI maps it to exit code 2.
    assert server.ConfigError is access.ConfigError is config.ConfigError is errors.ConfigError


# the gateway's new settings -------------------------------------------------------------

SECRET_A = "server-secret-of-a-0123"
TOKEN_A = "client-token-of-a-0123"


def test_gateway_settings_defaults_give_the_gateway_config(tmp_path: Path) -> None:
    s = config.load(GatewaySettings, None, "gateway", {})
    assert s.apps == {}
    assert s.strict_limits is True
    assert s.rate_limit == 1000.0
    assert s.rate_burst == 2000
    assert s.broadcast_per_minute == 5
    assert s.max_body_bytes == 64 * 1024
    assert s.gateway_config() == GatewayConfig(
        host="127.0.0.1",
        port=8787,
        data_dir=tmp_path / "state" / "unipush-bridge" / "gateway",
        server_secret=None,
        client_token=None,
        apps={},
        strict_limits=True,
        rate_limit=1000.0,
        rate_burst=2000,
        broadcast_per_minute=5,
        max_body_bytes=64 * 1024,
    )


def test_apps_tables_become_app_secrets(tmp_path: Path) -> None:
    f = write(
        tmp_path / "g.toml",
        'host = "0.0.0.0"\n'
        'server_secret = "global-server-secret-0"\n'
        'client_token = "global-client-token-0"\n'
        "strict_limits = false\n"
        "rate_limit = 12.5\n"
        "rate_burst = 30\n"
        "broadcast_per_minute = 0\n"
        "max_body_bytes = 2048\n"
        '[apps."__UNI__A"]\n'
        f'server_secret = "{SECRET_A}"\n'
        f'client_token = "{TOKEN_A}"\n'
        '[apps."__UNI__B"]\n'
        'client_token = "client-token-of-b-0123"\n',
    )
    gc = config.load(GatewaySettings, f, "gateway", {}).gateway_config()
    assert dict(gc.apps) == {
        "__UNI__A": AppSecrets(server_secret=SECRET_A, client_token=TOKEN_A),
        "__UNI__B": AppSecrets(server_secret=None, client_token="client-token-of-b-0123"),
    }
    assert gc.server_secret == "global-server-secret-0"
    assert gc.client_token == "global-client-token-0"
    assert (gc.strict_limits, gc.rate_limit, gc.rate_burst) == (False, 12.5, 30)
    assert (gc.broadcast_per_minute, gc.max_body_bytes) == (0, 2048)
    assert gc.serves("__UNI__A")
    assert not gc.serves("__UNI__C")
    assert gc.secrets_for("__UNI__B") == AppSecrets(
        "global-server-secret-0", "client-token-of-b-0123"
    )
    gc.check()  # every listed app has both secrets (B through the global server_secret)


@pytest.mark.parametrize("key", ["server_secret", "client_token"])
def test_short_app_secret_names_the_app_key(tmp_path: Path, key: str) -> None:
    f = write(tmp_path / "g.toml", f'[apps."__UNI__A"]\n{key} = "short-secret"\n')
    with pytest.raises(ConfigError) as info:
        config.load(GatewaySettings, f, "gateway", {})
    text = str(info.value)
    assert f"key 'apps.__UNI__A.{key}'" in text
    assert "at least 16 characters" in text
    assert str(f) in text


def test_unknown_key_in_an_app_table(tmp_path: Path) -> None:
    f = write(tmp_path / "g.toml", '[apps."__UNI__A"]\nsecret = "0123456789abcdef0"\n')
    with pytest.raises(ConfigError, match=r"key 'apps.__UNI__A.secret'.*unknown key"):
        config.load(GatewaySettings, f, "gateway", {})


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("2.5", 2.5), ("100", 100.0)])
def test_env_rate_limit(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_RATE_LIMIT", value)
    s = config.load(GatewaySettings, None, "gateway", {})
    assert s.rate_limit == expected
    assert s.gateway_config().rate_limit == expected


def test_env_strict_limits_and_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_STRICT_LIMITS", "false")
    monkeypatch.setenv(
        "UNIPUSH_BRIDGE_GATEWAY_APPS", f'{{"__UNI__A": {{"client_token": "{TOKEN_A}"}}}}'
    )
    gc = config.load(GatewaySettings, None, "gateway", {}).gateway_config()
    assert gc.strict_limits is False
    assert dict(gc.apps) == {"__UNI__A": AppSecrets(client_token=TOKEN_A)}


@pytest.mark.parametrize(
    ("toml", "key", "rule"),
    [
        ("rate_limit = -1\n", "rate_limit", "greater than or equal to 0"),
        ("rate_burst = 0\n", "rate_burst", "greater than or equal to 1"),
        ("broadcast_per_minute = -1\n", "broadcast_per_minute", "greater than or equal to 0"),
        ("max_body_bytes = 1023\n", "max_body_bytes", "greater than or equal to 1024"),
        ("max_body_bytes = 16777217\n", "max_body_bytes", "less than or equal to 16777216"),
        ('strict_limits = "maybe"\n', "strict_limits", "valid boolean"),
        ('apps = "x"\n', "apps", "valid dictionary"),
    ],
)
def test_bad_gateway_value_names_the_key(tmp_path: Path, toml: str, key: str, rule: str) -> None:
    f = write(tmp_path / "g.toml", toml)
    with pytest.raises(ConfigError) as info:
        config.load(GatewaySettings, f, "gateway", {})
    text = str(info.value)
    assert f"key {key!r}" in text
    assert f"UNIPUSH_BRIDGE_GATEWAY_{key.upper()}" in text
    assert rule in text

"""issue 12 item 7: a typo'd key in the config file is named with the nearest real key
(not with a flag and a variable made from the typo, which do not exist), and a typo'd
``UNIPUSH_BRIDGE_*`` variable, which pydantic-settings ignores, is warned about on
stderr with the nearest real variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.procs import cli
from unipush_bridge import config
from unipush_bridge.config import ConfigError, DaemonSettings, GatewaySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("UNIPUSH_BRIDGE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cls", "toml", "key", "hint"),
    [
        (DaemonSettings, "embeded_port = 1\n", "embeded_port", "did you mean 'embedded_port'?"),
        (DaemonSettings, "flood_treshold = 1\n", "flood_treshold", "'flood_threshold'"),
        (GatewaySettings, "rate_limt = 1\n", "rate_limt", "did you mean 'rate_limit'?"),
        (
            GatewaySettings,
            '[apps."__UNI__A"]\nclient_tokn = "0123456789abcdef0"\n',
            "apps.__UNI__A.client_tokn",
            "did you mean 'client_token'?",
        ),
        # A key of the other program: said so, not guessed at.
        (DaemonSettings, "port = 1\n", "port", "'port' is a gateway setting (gateway.toml)"),
        (GatewaySettings, "embedded_port = 1\n", "embedded_port", "a daemon setting"),
        # No near key: the real ones are listed, not a file an installed wheel lacks.
        (
            DaemonSettings,
            "zzqqxx = 1\n",
            "zzqqxx",
            "this file's keys are log_level, log_format, gateway, appid, ",
        ),
        (
            GatewaySettings,
            "zzqqxx = 1\n",
            "zzqqxx",
            "this file's keys are log_level, log_format, host, port, ",
        ),
        (
            GatewaySettings,
            '[apps."__UNI__A"]\nzzqqxx = 1\n',
            "apps.__UNI__A.zzqqxx",
            "apps.__UNI__A's keys are ",
        ),
    ],
)
def test_unknown_key_names_the_nearest_key(
    tmp_path: Path, cls: type[config._Settings], toml: str, key: str, hint: str
) -> None:
    """issue 12 item 7: the message names the key, 'unknown key' and the nearest key,
    and never a flag or an environment variable built from the typo."""
    f = write(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as info:
        config.load(cls, f, "x", {})
    text = str(info.value)
    assert f"key {key!r}: unknown key" in text
    assert hint in text
    assert "UNIPUSH_BRIDGE" not in text
    assert "flag" not in text


def test_a_bad_value_still_names_flag_and_variable(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "embedded_port = -1\n")
    with pytest.raises(ConfigError, match=r"UNIPUSH_BRIDGE_EMBEDDED_PORT or config file"):
        config.load(DaemonSettings, f, "daemon", {})


@pytest.mark.parametrize(
    ("cls", "name", "nearest"),
    [
        (DaemonSettings, "UNIPUSH_BRIDGE_EMBEDED_PORT", "UNIPUSH_BRIDGE_EMBEDDED_PORT"),
        (DaemonSettings, "unipush_bridge_app_nmae", "UNIPUSH_BRIDGE_APP_NAME"),
        (DaemonSettings, "UNIPUSH_BRIDGE_GATEWAY_PROT", "UNIPUSH_BRIDGE_GATEWAY_PORT"),
        (GatewaySettings, "UNIPUSH_BRIDGE_GATEWAY_RATE_LIMT", "UNIPUSH_BRIDGE_GATEWAY_RATE_LIMIT"),
        (GatewaySettings, "UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRETS", "_GATEWAY_SERVER_SECRET"),
    ],
)
def test_unknown_variable_warns_with_the_nearest(
    monkeypatch: pytest.MonkeyPatch, cls: type[config._Settings], name: str, nearest: str
) -> None:
    """issue 12 item 7: a variable that is no setting is one warning naming it and the
    nearest real variable; the settings load as if it were not there."""
    monkeypatch.setenv(name, "1")
    warnings: list[str] = []
    config.load(cls, None, "x", {}, warn=warnings.append)
    assert len(warnings) == 1, warnings
    assert name in warnings[0]
    assert "not a setting, ignored" in warnings[0]
    assert f"did you mean {nearest}" in warnings[0] or warnings[0].endswith(f"{nearest}?")


def test_known_variables_of_either_program_do_not_warn() -> None:
    """The daemon's and the gateway's variables share the prefix; neither is a typo for
    the other, and send's UNIPUSH_BRIDGE_SEND_URL is read by the CLI."""
    environ = dict.fromkeys(
        (
            "UNIPUSH_BRIDGE_APPID",
            "UNIPUSH_BRIDGE_GATEWAY",
            "UNIPUSH_BRIDGE_GATEWAY_PORT",
            "UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET",
            "UNIPUSH_BRIDGE_SEND_URL",
            "unipush_bridge_log_level",
            "PATH",
        ),
        "1",
    )
    for cls in (DaemonSettings, GatewaySettings):
        assert config.unknown_env(cls, environ) == []


def test_run_warns_on_stderr_as_a_real_process(tmp_path: Path) -> None:
    """issue 12 item 7, end to end: `run --print-config` with a typo'd variable exits 0
    (the variable is ignored) with one warning line on stderr naming the nearest one;
    a typo'd file key exits 2 and names the nearest key."""
    env = {"XDG_CONFIG_HOME": str(tmp_path), "UNIPUSH_BRIDGE_EMBEDED_PORT": "9"}
    res = cli("run", "--print-config", "--state-dir", str(tmp_path / "s"), env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "UNIPUSH_BRIDGE_EMBEDED_PORT" in lines[0]
    assert "did you mean UNIPUSH_BRIDGE_EMBEDDED_PORT?" in lines[0]
    assert '"embedded_port": 8787' in res.stdout  # ignored, as before

    f = write(tmp_path / "d.toml", "embeded_port = 9\n")
    res = cli("run", "--print-config", "--config", str(f), env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert res.returncode == 2
    assert "key 'embeded_port': unknown key; did you mean 'embedded_port'?" in res.stderr
    assert "UNIPUSH_BRIDGE_EMBEDED_PORT" not in res.stderr

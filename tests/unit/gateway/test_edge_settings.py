"""The edge's settings from a TOML file and the environment reach GatewayConfig, and
bad values name the key (issue 10 items 4, 9, 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from unipush_bridge import config
from unipush_bridge.config import ConfigError, GatewaySettings


def test_edge_settings_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "g.toml"
    f.write_text(
        'allowed_origins = ["https://admin.example"]\n'
        'allowed_hosts = ["push.example.com"]\n'
        "auth_failures_per_minute = 3\n"
        "max_connections = 500\n"
        "header_timeout_s = 2.5\n"
        "keepalive_timeout_s = 7\n"
        "body_timeout_s = 4\n"
        "new_cids_per_minute = 600\n"
    )
    gc = config.load(GatewaySettings, f, "gateway", {}).gateway_config()
    assert gc.allowed_origins == ("https://admin.example",)
    assert gc.allowed_hosts == ("push.example.com",)
    assert (gc.auth_failures_per_minute, gc.max_connections) == (3, 500)
    assert (gc.header_timeout_s, gc.keepalive_timeout_s, gc.body_timeout_s) == (2.5, 7, 4)
    assert gc.new_cids_per_minute == 600
    gc.check()


def test_edge_defaults() -> None:
    gc = GatewaySettings().gateway_config()
    assert (gc.allowed_origins, gc.allowed_hosts) == ((), ())
    assert (gc.auth_failures_per_minute, gc.max_connections) == (10, 10_000)
    assert gc.new_cids_per_minute == 60


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIPUSH_BRIDGE_GATEWAY_ALLOWED_ORIGINS", '["https://a.example"]')
    assert GatewaySettings().gateway_config().allowed_origins == ("https://a.example",)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("max_connections = 0\n", "max_connections"),
        ("header_timeout_s = 0\n", "header_timeout_s"),
        ("auth_failures_per_minute = -1\n", "auth_failures_per_minute"),
        ("new_cids_per_minute = -1\n", "new_cids_per_minute"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, line: str, key: str) -> None:
    f = tmp_path / "g.toml"
    f.write_text(line)
    with pytest.raises(ConfigError, match=key):
        config.load(GatewaySettings, f, "gateway", {})

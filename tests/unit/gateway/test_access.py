"""gateway/access.py: served appIds, per-app secrets and the loopback rule."""

from __future__ import annotations

import pytest

from unipush_bridge.gateway.access import AppSecrets, ConfigError, GatewayConfig, is_loopback

S_GLOBAL = "global-server-secret"
C_GLOBAL = "global-client-token-"
S_A = "server-secret-of-a--"
C_A = "client-token-of-a---"


def test_no_apps_serves_every_appid() -> None:
    gc = GatewayConfig()
    assert gc.serves("__UNI__A")
    assert gc.serves("anything")
    assert gc.secrets_for("__UNI__A") == AppSecrets(None, None)
    assert gc.client_token_for("__UNI__A") is None


@pytest.mark.parametrize("appid", ["__UNI__A:B", "a\nb", "tab\there", "x" * 65, ""])
def test_an_appid_the_stores_cannot_key_is_never_served(appid: str) -> None:
    """The Redis store joins key parts with ':' (and its expiry index's with a newline),
    so "A:B" would share keys with "A"; such an appId is neither served nor listable."""
    assert not GatewayConfig().serves(appid)
    with pytest.raises(LookupError):
        GatewayConfig().secrets_for(appid)
    if appid:
        with pytest.raises(ConfigError, match="is not an appId"):
            GatewayConfig(apps={appid: AppSecrets()}).check()
    assert GatewayConfig().serves("__UNI__A1B2C3D") and GatewayConfig().serves("应用-1.0")


def test_no_apps_uses_the_global_secrets() -> None:
    gc = GatewayConfig(server_secret=S_GLOBAL, client_token=C_GLOBAL)
    assert gc.secrets_for("__UNI__X") == AppSecrets(S_GLOBAL, C_GLOBAL)
    assert gc.client_token_for("__UNI__X") == C_GLOBAL


def test_listed_apps_only_are_served() -> None:
    gc = GatewayConfig(apps={"__UNI__A": AppSecrets(S_A, C_A), "__UNI__B": AppSecrets()})
    assert gc.serves("__UNI__A")
    assert gc.serves("__UNI__B")
    assert not gc.serves("__UNI__C")
    assert not gc.serves("")
    with pytest.raises(LookupError):
        gc.secrets_for("__UNI__C")
    with pytest.raises(LookupError):
        gc.client_token_for("__UNI__C")


def test_per_app_secrets_override_the_global_ones() -> None:
    gc = GatewayConfig(
        server_secret=S_GLOBAL,
        client_token=C_GLOBAL,
        apps={
            "__UNI__A": AppSecrets(S_A, C_A),
            "__UNI__B": AppSecrets(client_token=C_A),
            "__UNI__C": AppSecrets(server_secret=S_A),
            "__UNI__D": AppSecrets(),
        },
    )
    assert gc.secrets_for("__UNI__A") == AppSecrets(S_A, C_A)
    assert gc.secrets_for("__UNI__B") == AppSecrets(S_GLOBAL, C_A)
    assert gc.secrets_for("__UNI__C") == AppSecrets(S_A, C_GLOBAL)
    assert gc.secrets_for("__UNI__D") == AppSecrets(S_GLOBAL, C_GLOBAL)
    assert gc.client_token_for("__UNI__A") == C_A
    assert gc.client_token_for("__UNI__D") == C_GLOBAL


def test_defaults() -> None:
    gc = GatewayConfig()
    assert (gc.host, gc.port) == ("127.0.0.1", 8787)
    assert gc.strict_limits is True
    assert (gc.rate_limit, gc.rate_burst, gc.broadcast_per_minute) == (1000.0, 2000, 5)
    assert gc.max_body_bytes == 64 * 1024
    assert dict(gc.apps) == {}


# check() --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.8.9.10"])
def test_loopback_needs_no_secrets_for_any_app(host: str) -> None:
    GatewayConfig(host=host, apps={"__UNI__A": AppSecrets(), "__UNI__B": AppSecrets()}).check()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
        ("", False),
        ("localhost.example.org", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_beyond_loopback_every_served_app_needs_both_secrets() -> None:
    gc = GatewayConfig(
        host="0.0.0.0",
        apps={"__UNI__A": AppSecrets(S_A, C_A), "__UNI__B": AppSecrets(server_secret=S_A)},
    )
    with pytest.raises(ConfigError) as info:
        gc.check()
    assert str(info.value) == (
        "host: '0.0.0.0' is not a loopback address; set client_token for app "
        "'__UNI__B' to listen on it"
    )


def test_beyond_loopback_names_both_missing_keys_and_the_app() -> None:
    gc = GatewayConfig(
        host="0.0.0.0", apps={"__UNI__A": AppSecrets(S_A, C_A), "__UNI__Z": AppSecrets()}
    )
    with pytest.raises(ConfigError) as info:
        gc.check()
    text = str(info.value)
    assert "'__UNI__Z'" in text
    assert "server_secret and client_token" in text
    assert "__UNI__A" not in text


def test_beyond_loopback_missing_server_secret_is_named() -> None:
    gc = GatewayConfig(host="0.0.0.0", apps={"__UNI__A": AppSecrets(client_token=C_A)})
    with pytest.raises(ConfigError) as info:
        gc.check()
    text = str(info.value)
    assert "set server_secret for app '__UNI__A'" in text
    assert "client_token" not in text


def test_beyond_loopback_global_secrets_cover_listed_apps() -> None:
    GatewayConfig(
        host="0.0.0.0",
        server_secret=S_GLOBAL,
        client_token=C_GLOBAL,
        apps={"__UNI__A": AppSecrets(), "__UNI__B": AppSecrets(client_token=C_A)},
    ).check()


def test_beyond_loopback_with_every_app_complete() -> None:
    GatewayConfig(
        host="::",
        apps={"__UNI__A": AppSecrets(S_A, C_A), "__UNI__B": AppSecrets(S_GLOBAL, C_GLOBAL)},
    ).check()


def test_beyond_loopback_without_apps_names_no_app() -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig(host="0.0.0.0", server_secret=S_GLOBAL).check()
    assert str(info.value) == (
        "host: '0.0.0.0' is not a loopback address; set client_token to listen on it"
    )

"""Who may use the gateway: served appIds, their secrets, the loopback rule, limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError


@dataclass(frozen=True)
class AppSecrets:
    #: Bearer secret for this app's HTTP API calls.
    server_secret: str | None = None
    #: Token this app's daemons present in hello.
    client_token: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    data_dir: Path = Path(".")
    #: Secrets for every app without its own entry in ``apps``.
    server_secret: str | None = None
    client_token: str | None = None
    #: Per-app secrets. When not empty, only these appIds are served.
    apps: Mapping[str, AppSecrets] = field(default_factory=lambda: MappingProxyType({}))
    #: uni-push's text limits (title < 20, content < 50, payload < 800); off = roomier.
    strict_limits: bool = True
    #: API calls per second per app (0 = no limit) and the burst allowed above it.
    rate_limit: float = 1000.0
    rate_burst: int = 2000
    #: Broadcasts (sendMessage with no target) per minute per app, as uni-push (0 = no limit).
    broadcast_per_minute: int = 5
    max_body_bytes: int = 64 * 1024

    def serves(self, appid: str) -> bool:
        return not self.apps or appid in self.apps

    def secrets_for(self, appid: str) -> AppSecrets:
        """The app's secrets; raises LookupError for an appId not served here."""
        if not self.serves(appid):
            raise LookupError(appid)
        own = self.apps.get(appid, AppSecrets())
        return AppSecrets(
            server_secret=own.server_secret or self.server_secret,
            client_token=own.client_token or self.client_token,
        )

    def client_token_for(self, appid: str) -> str | None:
        return self.secrets_for(appid).client_token

    def check(self) -> None:
        """Beyond loopback, every app served must have both secrets."""
        if is_loopback(self.host):
            return
        for appid in list(self.apps) or [""]:
            secrets = self.secrets_for(appid)
            missing = [k for k in ("server_secret", "client_token") if not getattr(secrets, k)]
            if missing:
                whose = f" for app {appid!r}" if appid else ""
                raise ConfigError(
                    f"host: {self.host!r} is not a loopback address; set "
                    f"{' and '.join(missing)}{whose} to listen on it"
                )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

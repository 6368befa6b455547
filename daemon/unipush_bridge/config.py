"""Settings for the daemon and the gateway: TOML file, then environment, then flags.

A bad file or value raises :class:`ConfigError`, whose text names the key and the
rule; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import contextvars
import tomllib
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_type_hints

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .errors import ConfigError
from .paths import APP, DEFAULT_APPID, default_socket, runtime_dir
from .wire import gateway as protocol

__all__ = [
    "APP",
    "DEFAULT_APPID",
    "ConfigError",
    "DaemonSettings",
    "GatewaySettings",
    "default_socket",
    "load",
    "runtime_dir",
]

if TYPE_CHECKING:
    from .gateway.access import GatewayConfig
    from .runtime.options import DaemonOptions


_file_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "_file_values", default=None
)


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: auto: console on a TTY, JSON lines otherwise (journald, launchd, files).
    log_format: Literal["auto", "console", "json"] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags, then UNIPUSH_BRIDGE_* variables, then the file.
        file_source = InitSettingsSource(settings_cls, init_kwargs=_file_values.get() or {})
        return (init_settings, env_settings, file_source)


class _DaemonBase(_Settings):
    model_config = SettingsConfigDict(env_prefix="UNIPUSH_BRIDGE_")

    @field_validator("gateway", check_fields=False)
    @classmethod
    def _gateway_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        protocol.websocket_url(value)  # raises ValueError with the reason
        return value.strip()

    def options(self, reload_argv: tuple[str, ...] = ()) -> DaemonOptions:
        from .runtime import options

        values = {f.name: getattr(self, f.name) for f in options.DaemonOptions.settings()}
        return options.DaemonOptions(**values, reload_argv=reload_argv)


def _daemon_settings() -> type[_DaemonBase]:
    """The pydantic-settings model, made from DaemonOptions: the settings are declared
    once, there, with their defaults and rules."""
    from .runtime.options import DaemonOptions

    hints = get_type_hints(DaemonOptions)
    declared: dict[str, Any] = {}
    for f in DaemonOptions.settings():
        rules: dict[str, Any] = {"description": f.metadata["doc"], **f.metadata["rules"]}
        if f.default_factory is not MISSING:
            declared[f.name] = (hints[f.name], Field(default_factory=f.default_factory, **rules))
        else:
            declared[f.name] = (hints[f.name], Field(f.default, **rules))
    return create_model("DaemonSettings", __base__=_DaemonBase, **declared)


DaemonSettings = _daemon_settings()


class AppSecretsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_secret: str | None = Field(None, min_length=16)
    client_token: str | None = Field(None, min_length=16)


class GatewaySettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="UNIPUSH_BRIDGE_GATEWAY_")

    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_state_dir(APP)) / "gateway"
    )
    #: Bearer secret for the HTTP API. Needed (with client_token) beyond loopback.
    server_secret: str | None = Field(None, min_length=16)
    #: Token daemons must present. Needed (with server_secret) beyond loopback.
    client_token: str | None = Field(None, min_length=16)
    #: Per-app secrets; when any app is listed, only listed apps are served.
    apps: dict[str, AppSecretsSettings] = Field(default_factory=dict)
    #: uni-push's text limits (title < 20, content < 50, payload < 800 characters).
    strict_limits: bool = True
    #: API calls per second per app (0 = unlimited), and the burst above that rate.
    rate_limit: float = Field(1000.0, ge=0)
    rate_burst: int = Field(2000, ge=1)
    #: Broadcasts per minute per app, as uni-push allows (0 = unlimited).
    broadcast_per_minute: int = Field(5, ge=0)
    #: Largest HTTP request body accepted.
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: Web origins whose pages may call the gateway (none by default: a page in the
    #: browser must not push to the desktop). 'null' is never allowed.
    allowed_origins: list[str] = Field(default_factory=list)
    #: Host names accepted besides loopback names and the bound address (DNS
    #: rebinding guard); "*" accepts any (behind a proxy that checks Host itself).
    allowed_hosts: list[str] = Field(default_factory=list)
    #: Failed authentications per minute per source address, then 429 (0 = no limit).
    auth_failures_per_minute: int = Field(10, ge=0)
    #: Open connections at most, daemons' websockets included.
    max_connections: int = Field(10_000, ge=1)
    #: Seconds to send a complete request head; seconds idle between requests;
    #: seconds for a request body to arrive.
    header_timeout_s: float = Field(10.0, gt=0)
    keepalive_timeout_s: float = Field(30.0, gt=0)
    body_timeout_s: float = Field(10.0, gt=0)

    def gateway_config(self) -> GatewayConfig:
        from .gateway.access import AppSecrets, GatewayConfig

        return GatewayConfig(
            host=self.host,
            port=self.port,
            data_dir=self.data_dir,
            server_secret=self.server_secret,
            client_token=self.client_token,
            apps={k: AppSecrets(v.server_secret, v.client_token) for k, v in self.apps.items()},
            strict_limits=self.strict_limits,
            rate_limit=self.rate_limit,
            rate_burst=self.rate_burst,
            broadcast_per_minute=self.broadcast_per_minute,
            max_body_bytes=self.max_body_bytes,
            allowed_origins=tuple(self.allowed_origins),
            allowed_hosts=tuple(self.allowed_hosts),
            auth_failures_per_minute=self.auth_failures_per_minute,
            max_connections=self.max_connections,
            header_timeout_s=self.header_timeout_s,
            keepalive_timeout_s=self.keepalive_timeout_s,
            body_timeout_s=self.body_timeout_s,
        )


def default_config_path(kind: str) -> Path:
    return Path(platformdirs.user_config_dir(APP)) / f"{kind}.toml"


S = TypeVar("S", bound=_Settings)


def load(cls: type[S], path: Path | None, kind: str, flags: dict[str, Any]) -> S:
    """Build settings; ``path`` None means the default file, which may be absent."""
    explicit = path is not None
    file = path if path is not None else default_config_path(kind)
    values: dict[str, Any] = {}
    if file.exists():
        try:
            with file.open("rb") as fh:
                values = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"{file}: config file not found")
    token = _file_values.set(values)
    try:
        return cls(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file if values else None, cls)) from None
    finally:
        _file_values.reset(token)


def _describe(exc: ValidationError, file: Path | None, cls: type[_Settings]) -> str:
    lines = []
    prefix = cls.model_config.get("env_prefix", "")
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "config"
        rule = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        env = f"{prefix}{key.split('.')[0].upper()}"
        where = f"{file}: " if file else ""
        lines.append(f"{where}key {key!r} (flag, {env} or config file): {rule}")
    return "\n".join(lines)

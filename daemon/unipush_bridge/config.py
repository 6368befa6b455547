"""Settings for the daemon and the gateway: TOML file, then environment, then flags.

A bad file or value raises :class:`ConfigError`, whose text names the key and the
rule; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import re
import stat
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_type_hints

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .errors import ConfigError
from .paths import APP, DEFAULT_APPID, default_socket, runtime_dir, socket_path_error
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


#: Settings that are paths, daemon's and gateway's: "" is none given.
PATH_KEYS = ("state_dir", "socket", "app_root", "app_icon", "sounds_dir", "data_dir")


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: auto: console on a TTY, JSON lines otherwise (journald, launchd, files).
    log_format: Literal["auto", "console", "json"] = "auto"

    @field_validator(*PATH_KEYS, mode="before", check_fields=False)
    @classmethod
    def _empty_path_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        """``UNIPUSH_BRIDGE_STATE_DIR=`` (an empty variable, a key set to "") means
        not set, as for the gateway's URL: as a path it was ".", and the state went to
        wherever the command was started from."""
        if isinstance(value, str) and not value.strip() and info.field_name is not None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

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

    @field_validator("quiet_hours", check_fields=False)
    @classmethod
    def _quiet_span(cls, value: str | None) -> str | None:
        from .runtime.core import parse_quiet_hours

        parse_quiet_hours(value)  # raises ValueError naming the rule
        return value or None

    @field_validator("web_host", check_fields=False)
    @classmethod
    def _web_host(cls, value: str) -> str:
        from .gateway.access import is_loopback

        if not is_loopback(value.strip()):
            raise ValueError(
                "must be a loopback address (127.0.0.1, ::1 or localhost): the web endpoint "
                "speaks plain ws:// and admits only loopback Host names (docs/web.md)"
            )
        return value.strip()

    @field_validator("web_origins", check_fields=False)
    @classmethod
    def _web_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from .runtime.webpair import normalize_origin

        try:  # raises naming the origin and the rule
            return tuple(normalize_origin(o, "origin") for o in value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def options(self, reload_argv: tuple[str, ...] = ()) -> DaemonOptions:
        from .runtime import options

        if getattr(self, "web_port", None) is not None and not getattr(self, "web_origins", ()):
            raise ConfigError(
                "key 'web_origins': empty while web_port is set, so no page could connect; "
                'list the origins of your pages, e.g. web_origins = ["http://localhost:5173"]'
            )

        values = {f.name: getattr(self, f.name) for f in options.DaemonOptions.settings()}
        opts = options.DaemonOptions(**values, reload_argv=reload_argv)
        too_long = socket_path_error(opts.socket_path, given=opts.socket is not None)
        if too_long is not None:  # bind() would fail after the gateway started, exit 1
            raise ConfigError(
                f"key 'socket' (flag, UNIPUSH_BRIDGE_SOCKET or config file): {too_long}"
            )
        return opts


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
    #: "" (the SQLite file in data_dir) or a Redis URL shared by a cluster's nodes.
    store: str = ""
    #: Bearer secret for the HTTP API. Needed (with client_token) beyond loopback.
    server_secret: str | None = Field(None, min_length=16)
    #: Token daemons must present. Needed (with server_secret) beyond loopback.
    client_token: str | None = Field(None, min_length=16)
    #: Per-app secrets; when any app is listed, only listed apps are served.
    apps: dict[str, AppSecretsSettings] = Field(default_factory=dict)
    #: uni-push's text limits (title 20, content 50, payload 3072 characters).
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
    #: New cids a minute per source address (reconnects of known cids are free; 0 = no
    #: limit). Raise it for a NAT or proxy in front of many first-time daemons.
    new_cids_per_minute: int = Field(60, ge=0)
    #: Open connections at most, daemons' websockets included.
    max_connections: int = Field(10_000, ge=1)
    #: Seconds to send a complete request head; seconds idle between requests;
    #: seconds for a request body to arrive.
    header_timeout_s: float = Field(10.0, gt=0)
    keepalive_timeout_s: float = Field(30.0, gt=0)
    body_timeout_s: float = Field(10.0, gt=0)
    #: Seconds a daemon's websocket may be silent before the gateway pings it; no pong
    #: within half of it closes the link (the cid reads offline).
    link_timeout_s: float = Field(90.0, gt=0)

    def gateway_config(self) -> GatewayConfig:
        from .gateway.access import AppSecrets, GatewayConfig

        return GatewayConfig(
            host=self.host,
            port=self.port,
            data_dir=self.data_dir,
            store=self.store,
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
            new_cids_per_minute=self.new_cids_per_minute,
            max_connections=self.max_connections,
            header_timeout_s=self.header_timeout_s,
            keepalive_timeout_s=self.keepalive_timeout_s,
            body_timeout_s=self.body_timeout_s,
            link_timeout_s=self.link_timeout_s,
        )


def default_config_path(kind: str) -> Path:
    return Path(platformdirs.user_config_dir(APP)) / f"{kind}.toml"


S = TypeVar("S", bound=_Settings)


def load(
    cls: type[S],
    path: Path | None,
    kind: str,
    flags: dict[str, Any],
    warn: Callable[[str], None] | None = None,
) -> S:
    """Build settings; ``path`` None means the default file, which may be absent.

    ``UNIPUSH_BRIDGE_*`` variables that are no setting are ignored by pydantic-settings;
    each is named to ``warn`` (default: one line on stderr) with the nearest real one,
    since a typo there would otherwise change nothing without a word."""
    for line in unknown_env(cls, os.environ):
        (warn or _warn_stderr)(line)
    explicit = path is not None
    file = path if path is not None else default_config_path(kind)
    values = _read_toml(file, explicit)
    token = _file_values.set(values)
    try:
        return cls(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file if values else None, cls)) from None
    except SettingsError as exc:  # a list or table variable that is not JSON
        raise ConfigError(_describe_env(exc, cls)) from None
    finally:
        _file_values.reset(token)


#: A config file is a few kilobytes; more is not one (or is /dev/zero under another name).
MAX_CONFIG_BYTES = 1024 * 1024


def _read_toml(file: Path, explicit: bool) -> dict[str, Any]:
    """The file's table; {} for an absent default file. Opened without blocking and
    read only if it is a regular file: a FIFO or a device in its place would hang the
    command (or the service start) instead of failing."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: config file not found") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError(f"{file}: cannot read: {kind}")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{file}: {st.st_size} bytes; a config file is at most 1 MiB")
        raw = fh.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"{file}: starts with a byte order mark (BOM); save it as UTF-8 without")
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file}: not UTF-8 at line {line} (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


def _describe_env(exc: SettingsError, cls: type[_Settings]) -> str:
    """pydantic-settings names the field, not the variable, and puts the reason in the
    cause; both are said here."""
    found = re.search(r'field "([^"]+)"', str(exc))
    key = found.group(1) if found else "?"
    env = f"{cls.model_config.get('env_prefix', '')}{key}".upper()
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    return (
        f"environment variable {env} (key {key!r}): not JSON{cause}; a list or table "
        'is given as JSON there, e.g. ["a", "b"] or {"k": "v"}'
    )


def _describe(exc: ValidationError, file: Path | None, cls: type[_Settings]) -> str:
    lines = []
    prefix = cls.model_config.get("env_prefix", "")
    where = f"{file}: " if file else ""
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            # Only the file can hold a key that is no setting: naming a flag and a
            # variable made from the typo would send the user to ones that do not exist.
            lines.append(f"{where}key {key!r}: unknown key; {_hint(cls, err['loc'])}")
            continue
        env = f"{prefix}{key.split('.')[0].upper()}"
        lines.append(f"{where}key {key!r} (flag, {env} or config file): {err['msg']}")
    return "\n".join(lines)


#: Variables with the prefix that are read outside the settings (``send --gateway-url``).
OTHER_ENV = frozenset({"UNIPUSH_BRIDGE_SEND_URL"})
ENV_PREFIX = "UNIPUSH_BRIDGE_"


def _nearest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _keys_at(cls: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys a table at ``loc`` may hold (``apps."<appId>"`` holds an app's secrets)."""
    model: Any = cls
    rest = list(loc)
    while rest and isinstance(model, type) and issubclass(model, BaseModel):
        field = model.model_fields.get(str(rest.pop(0)))
        if field is None:
            return []
        model = field.annotation
        args = get_args(model)
        if args and rest:  # dict[str, Model]: the next part is the dict's key
            model, rest = args[-1], rest[1:]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _hint(cls: type[_Settings], loc: tuple[int | str, ...]) -> str:
    name = str(loc[-1])
    if len(loc) == 1:  # the other file's exact key says more than a near one of ours
        other: type[_Settings] = DaemonSettings if cls is GatewaySettings else GatewaySettings
        kind = "daemon" if cls is GatewaySettings else "gateway"
        if name in other.model_fields:
            return f"{name!r} is a {kind} setting ({kind}.toml), not one of this file's"
    choices = _keys_at(cls, loc[:-1])
    near = _nearest(name, choices)
    if near is not None:
        return f"did you mean {near!r}?"
    # Named here, not by a file: config/*.toml are in the checkout, not in the wheel.
    if choices:
        where = "this file's" if len(loc) == 1 else f"{'.'.join(map(str, loc[:-1]))}'s"
        return f"{where} keys are {', '.join(choices)}"
    return "the keys are listed in config/daemon.toml and config/gateway.toml of the source"


def _env_names(cls: type[_Settings]) -> dict[str, str]:
    """Each setting's variable name, upper case, to its key."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{key}".upper(): key for key in cls.model_fields}


def unknown_env(cls: type[_Settings], environ: Mapping[str, str]) -> list[str]:
    """One warning per ``UNIPUSH_BRIDGE_*`` variable that no program here reads, naming
    the nearest real one (the daemon's and the gateway's share the prefix, so a
    variable of the other one is not a typo, and may be the one meant)."""
    names = {**_env_names(DaemonSettings), **_env_names(GatewaySettings), **_env_names(cls)}
    known = set(names) | OTHER_ENV
    # Compared without the shared prefix, which would make every name look close.
    choices = {name.removeprefix(ENV_PREFIX).lower(): name for name in names}
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        near = _nearest(upper.removeprefix(ENV_PREFIX), list(choices))
        hint = f"; did you mean {choices[near]}?" if near is not None else ""
        lines.append(f"warning: environment variable {name} is not a setting, ignored{hint}")
    return lines


def _warn_stderr(line: str) -> None:
    print(f"unipush-bridge: {line}", file=sys.stderr, flush=True)

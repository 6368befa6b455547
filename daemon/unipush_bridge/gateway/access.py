"""Who may use the gateway: served appIds, their secrets, the loopback rule, limits,
and which web pages and Host names may reach it (no web page, by default)."""

from __future__ import annotations

import functools
import ipaddress
import re
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
    #: Where registrations and messages live: "" the SQLite file in data_dir, or a
    #: redis:// (rediss://, unix://) URL shared by every node of a cluster (issue 17).
    store: str = ""
    #: Secrets for every app without its own entry in ``apps``.
    server_secret: str | None = None
    client_token: str | None = None
    #: Per-app secrets. When not empty, only these appIds are served.
    apps: Mapping[str, AppSecrets] = field(default_factory=lambda: MappingProxyType({}))
    #: uni-push's text limits (title 20, content 50, payload 3072); off = roomier.
    strict_limits: bool = True
    #: API calls per second per app (0 = no limit) and the burst allowed above it.
    rate_limit: float = 1000.0
    rate_burst: int = 2000
    #: Broadcasts (sendMessage with no target) per minute per app, as uni-push (0 = no limit).
    broadcast_per_minute: int = 5
    max_body_bytes: int = 64 * 1024
    #: Web origins (``https://app.example``) whose pages may call the gateway. Empty:
    #: none may, so a page in the user's browser cannot push to the desktop.
    allowed_origins: tuple[str, ...] = ()
    #: Host header names accepted besides loopback names and the bound address (a
    #: DNS rebinding guard); ``*`` accepts any.
    allowed_hosts: tuple[str, ...] = ()
    #: Failed authentications (wrong secret, unknown appId) per minute per source
    #: address before every call from it is answered 429 (0 = no limit).
    auth_failures_per_minute: int = 10
    #: New cids a minute per source address (0 = no limit); reconnects are not counted.
    new_cids_per_minute: int = 60
    #: Open TCP connections at most (daemons' websockets included). At the cap a new
    #: connection takes the place of the oldest one that has not sent a request yet,
    #: or is closed at once.
    max_connections: int = 10_000
    #: Seconds a connection may take to send a complete request head (Slowloris).
    header_timeout_s: float = 10.0
    #: Seconds an idle keep-alive connection stays open between requests.
    keepalive_timeout_s: float = 30.0
    #: Seconds a request body may take to arrive.
    body_timeout_s: float = 10.0
    #: Seconds a daemon's websocket may be silent before the gateway pings it (a daemon
    #: pings every 30 s, and anything it sends counts); no pong within half of this
    #: closes the link, and its cid reads offline. A laptop that slept without a FIN,
    #: or a NAT that dropped the mapping, read online for up to TCP's 15 minutes.
    link_timeout_s: float = 90.0

    def serves(self, appid: str) -> bool:
        return APPID_RE.fullmatch(appid) is not None and (not self.apps or appid in self.apps)

    def secrets_for(self, appid: str) -> AppSecrets:
        """The app's secrets; raises LookupError for an appId not served here."""
        if not self.serves(appid):
            raise LookupError(appid)
        return self._secrets(appid)

    def _secrets(self, appid: str) -> AppSecrets:
        """An app's secrets, or with "" those of every app not listed."""
        own = self.apps.get(appid, AppSecrets())
        return AppSecrets(
            server_secret=own.server_secret or self.server_secret,
            client_token=own.client_token or self.client_token,
        )

    def client_token_for(self, appid: str) -> str | None:
        return self.secrets_for(appid).client_token

    def rate_key(self, appid: str, source: str) -> str:
        """The API rate bucket of a call. Listed apps have their own (unknown appIds are
        refused before the limiter); otherwise a source address has one for all the
        appIds it names, so inventing appIds gains nothing."""
        return appid if self.apps else f"from {source}"

    def origin_refusal(self, origin: str | None) -> str | None:
        """Why a request with this Origin header is refused, or None when it is not."""
        if origin is None:
            return None
        if origin.strip().lower() == "null":
            return (
                "Origin 'null' (a sandboxed frame, a file: or data: page) is refused: "
                "web pages may not call this gateway"
            )
        if _origin(origin) in {_origin(o) for o in self.allowed_origins}:
            return None
        return (
            f"Origin {origin!r} is refused: web pages may not call this gateway "
            "unless their origin is listed in the allowed_origins setting"
        )

    def host_refusal(self, host: str | None) -> str | None:
        """Why a request with this Host header is refused (DNS rebinding), or None.

        Accepted: loopback names and addresses, the bound address (unless it is a
        wildcard such as 0.0.0.0, which no client puts in Host), and allowed_hosts;
        any port. A request without Host (HTTP/1.0) comes from no browser.
        """
        if host is None or "*" in self.allowed_hosts:
            return None
        name = _host_name(host)
        if name is not None:
            if name == "localhost" or _is_loopback_ip(name):
                return None
            bound = _host_name(self.host)
            if bound is not None and name == bound and not _is_wildcard(bound):
                return None
            if name in {_host_name(h) for h in self.allowed_hosts}:
                return None
        return (
            f"Host {host!r} is not a name of this gateway (a guard against DNS "
            "rebinding): list it in the allowed_hosts setting"
        )

    def check(self) -> None:
        """Beyond loopback, every app served must have both secrets; the origins and
        hosts allowed must be what the checks can match."""
        for origin in self.allowed_origins:
            if origin.strip().lower() == "null" or not ORIGIN_RE.fullmatch(origin.strip()):
                raise ConfigError(
                    f"allowed_origins: {origin!r} is not an origin; give scheme://host[:port] "
                    "such as https://app.example ('null' is never allowed)"
                )
        for appid in self.apps:
            if not APPID_RE.fullmatch(appid):
                raise ConfigError(
                    f"apps: {appid!r} is not an appId: 1 to 64 characters, no ':' and no "
                    "control characters (such as __UNI__A1B2C3D)"
                )
        for name in self.allowed_hosts:
            if name != "*" and _host_name(name) is None:
                raise ConfigError(
                    f"allowed_hosts: {name!r} is not a host name or address; give a name "
                    "such as push.example.com, an address, or * for any"
                )
        if self.store and not self.store.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"store: {self.store!r} is not a Redis URL; give redis://host:port/db, "
                "rediss://..., unix:///path/to/redis.sock, or leave it out for SQLite"
            )
        if self.max_connections < 1:
            raise ConfigError("max_connections: must be at least 1")
        for key in ("header_timeout_s", "keepalive_timeout_s", "body_timeout_s", "link_timeout_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key}: must be a number of seconds above 0")
        if is_loopback(self.host):
            return
        for appid in list(self.apps) or [""]:
            secrets = self._secrets(appid)
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


#: An appId served here: what a hello takes (1 to 64 characters), without ':' or a
#: control character. The Redis store joins its keys' parts with ':' and its expiry
#: index's with a newline, so "A:B" and "A" once shared keys: app "A:B"'s request_id
#: "1234567890" answered app "A"'s "B:1234567890", cids and all.
APPID_RE = re.compile(r"[^:\x00-\x1f\x7f]{1,64}")
#: scheme://host[:port], as browsers send Origin.
ORIGIN_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#@]+")
_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*")


def _origin(value: str) -> str:
    return value.strip().lower().rstrip("/")


def _host_name(host: str) -> str | None:
    """A Host header's (or a setting's) name without the port, lowercase; None when
    it is neither a DNS name nor an IP address."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return None
        try:
            return str(ipaddress.IPv6Address(host[1:end]))
        except ValueError:
            return None
    if host.count(":") > 1:  # a bare IPv6 address (a setting, not a Host header)
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    name, _, port = host.partition(":")
    if port and not re.fullmatch(r"\d{1,5}", port):
        return None
    name = name.rstrip(".")
    return name if _NAME_RE.fullmatch(name) else None


def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_wildcard(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def source_of(remote: str | None) -> str:
    """The source a rate limit counts: the peer's address; an IPv6 peer by its /64,
    the block one subscriber usually holds. Cached: a sender's keep-alive connection
    asks for every request, and parsing the address cost 1.5 % of a sendMessage."""
    if not remote:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)

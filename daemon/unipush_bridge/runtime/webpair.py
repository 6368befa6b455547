"""Pairing tokens of the web endpoint: which page origin holds which token.

``unipush-bridge web pair --origin URL`` makes a token, prints it once and keeps only
its SHA-256 here, in ``<state_dir>/<appid>.web-pairs.json`` (mode 0600). The endpoint
(runtime/web.py) reads the file at each hello, so a pairing or a revocation takes
effect without a restart. Standard library only: the CLI loads it without the daemon.
A token is 32 random bytes, so a plain hash (no salt, no stretching) is enough: there
is nothing to guess a token from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..paths import make_private_dirs, write_replacing

#: scheme://host[:port] and nothing else, as a browser sends Origin.
ORIGIN_RE = re.compile(r"(https?)://(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:\d{1,5})?")


class Pairing(NamedTuple):
    #: Short name for --revoke: the first 12 hex digits of the digest.
    id: str
    origin: str
    digest: str
    created: float


def normalize_origin(value: str, key: str = "origin") -> str:
    """An origin as browsers send it (lowercase, no path, no trailing slash); raises
    ConfigError naming ``key`` and the rule."""
    origin = value.strip().lower().rstrip("/")
    if origin == "null" or not ORIGIN_RE.fullmatch(origin):
        raise ConfigError(
            f"{key}: {value!r} is not a web origin; give scheme://host[:port] such as "
            "http://localhost:5173 (no path; 'null', file: and data: pages cannot pair)"
        )
    return origin


def pairs_file(state_dir: Path, appid: str) -> Path:
    return state_dir / f"{appid}.web-pairs.json"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load(path: Path) -> list[Pairing]:
    """The pairings, oldest first; none when the file is missing. A damaged file pairs
    nobody (and says so) rather than letting anyone in."""
    try:
        raw: Any = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: cannot read the web pairings ({exc}); remove it and pair again"
        ) from None
    found = []
    for entry in raw.get("pairs", []) if isinstance(raw, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
            found.append(
                Pairing(
                    str(entry.get("id", entry["digest"][:12])),
                    str(entry.get("origin", "")),
                    entry["digest"],
                    float(entry.get("created", 0)),
                )
            )
    return found


def _save(path: Path, pairs: list[Pairing]) -> None:
    """Atomically, 0600 from the first byte (the digests are not secret, but who paired
    what is this user's business). A missing state dir is made as the daemon makes it,
    0700 with each missing parent: ``mkdir(parents=True)`` left the parents to the
    umask (0755), and the daemon keeps an existing dir as it finds it."""
    make_private_dirs(path.parent)
    text = json.dumps({"pairs": [p._asdict() for p in pairs]}, indent=1)
    write_replacing(path, text, ".web-pairs.")


def pair(path: Path, origin: str) -> tuple[str, Pairing]:
    """A new token for ``origin``; returns it (shown once) and what is kept of it."""
    origin = normalize_origin(origin)
    token = secrets.token_urlsafe(32)
    value = digest(token)
    entry = Pairing(value[:12], origin, value, time.time())
    _save(path, [*load(path), entry])
    return token, entry


def revoke(path: Path, what: str) -> list[Pairing]:
    """Forget the pairing with this id, or every pairing of this origin; returns them."""
    pairs = load(path)
    try:
        origin: str | None = normalize_origin(what)
    except ConfigError:
        origin = None
    gone = [p for p in pairs if p.id == what or p.origin == origin]
    if gone:
        _save(path, [p for p in pairs if p not in gone])
    return gone


def check(path: Path, origin: str, token: object) -> str | None:
    """None when ``token`` was paired with ``origin``, else why not (for the page)."""
    if not isinstance(token, str) or not token:
        return "a pairing token is required: run `unipush-bridge web pair --origin " + origin + "`"
    value = digest(token)
    for p in load(path):
        if hmac.compare_digest(p.digest, value):
            if p.origin != origin:
                return f"this token was paired with another origin, not {origin}"
            return None
    return "unknown or revoked pairing token: run `unipush-bridge web pair --origin " + origin + "`"


# the `web pair` command (cli.py declares its flags) -------------------------------------------


def cmd_web_pair(args: Any) -> int:
    """Pairings live in the daemon's state dir, so the config names where; the token
    goes to stdout alone (for a pipe), the advice to stderr."""
    import sys

    from .. import config

    settings = config.load(
        config.DaemonSettings,
        args.config,
        "daemon",
        {"appid": args.appid, "state_dir": args.state_dir},
    )
    options = settings.options()
    path = pairs_file(options.state_dir, options.appid)
    if args.list:
        for p in load(path):
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.created))
            print(f"{p.id}  {p.origin}  paired {stamp}")
        return 0
    if args.revoke is not None:
        gone = revoke(path, args.revoke)
        if not gone:
            print(f"unipush-bridge web pair: no pairing {args.revoke!r}", file=sys.stderr)
            return 1
        for p in gone:
            print(f"revoked {p.id}  {p.origin}")
        return 0
    token, entry = pair(path, args.origin)
    print(token)
    listed = options.web_origins
    if entry.origin not in listed:
        print(
            f"note: {entry.origin} is not in web_origins ({', '.join(listed) or 'empty'}); add "
            "it there (and set web_port) or the endpoint refuses the page before its token",
            file=sys.stderr,
        )
    print(
        f"paired {entry.origin} as {entry.id}: give the page this token once, e.g. "
        "UniPushBridge.install(window.uni, {token}); it keeps it in localStorage",
        file=sys.stderr,
    )
    return 0

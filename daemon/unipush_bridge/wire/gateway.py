"""The gateway websocket protocol, version 1, as plain data: no sockets, no clock.

Both ends (the daemon's link and the gateway's hub) parse and build frames here, so
the wire format lives in one place and is tested without I/O. docs/protocol.md is
the prose version of this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ProtocolError
from .strictjson import (
    SURROGATE_ESCAPE,
    finite_float,
    lone_surrogate,
    reject_constant,
    well_formed,
)

VERSION = 1
#: Largest text frame either side accepts; the gateway caps payloads far below this.
MAX_FRAME_BYTES = 256 * 1024
#: Default websocket path on the gateway; a bare ws://host:port URL gets it appended.
DEFAULT_PATH = "/ws"

CID_RE = re.compile(r"^[0-9a-f]{32}$")
#: Largest seq, cursor or count on the wire: SQLite's largest integer, so no frame can
#: carry a number the stores cannot hold (2**63 used to end in an OverflowError).
MAX_SEQ = 2**63 - 1


class CloseCode:
    """Websocket close codes the gateway uses when it ends a session on purpose."""

    BAD_HELLO = 4400  # first frame was not a valid hello
    UNAUTHORIZED = 4401  # wrong or missing client token
    CID_TAKEN = 4403  # the cid is bound to another daemon's secret
    UNKNOWN_APP = 4404  # the gateway does not serve this appId
    REPLACED = 4409  # a newer connection registered the same cid
    UNSUPPORTED_VERSION = 4426  # protocol version not spoken by the gateway
    TOO_MANY_REGISTRATIONS = 4429  # too many new cids from this address; retry later


# Field rules ------------------------------------------------------------------------------
# Hand-written rather than a validation library: this is the daemon's hot path, and the
# daemon stays small (see docs/architecture.md, "memory").


def _str(
    frame: str, raw: dict[str, Any], key: str, *, lo: int = 1, hi: int = 64, optional: bool = False
) -> Any:
    value = raw.get(key)
    if value is None:
        if optional:
            return None
        raise ProtocolError(f"{frame}.{key}: field required")
    if not isinstance(value, str):
        raise ProtocolError(f"{frame}.{key}: must be a string")
    if not lo <= len(value) <= hi:
        raise ProtocolError(f"{frame}.{key}: must be {lo} to {hi} characters")
    return value


def _int(
    frame: str,
    raw: dict[str, Any],
    key: str,
    *,
    lo: int,
    hi: int = MAX_SEQ,
    default: int | None = None,
) -> int:
    value = raw.get(key, default)
    if value is None:
        raise ProtocolError(f"{frame}.{key}: field required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{frame}.{key}: must be an integer")
    if value < lo:
        raise ProtocolError(f"{frame}.{key}: must be at least {lo}")
    if value > hi:
        raise ProtocolError(f"{frame}.{key}: must be at most {hi}")
    return value


def _cid(frame: str, raw: dict[str, Any], *, optional: bool = False) -> Any:
    cid = _str(frame, raw, "cid", lo=0, hi=MAX_FRAME_BYTES, optional=optional)
    if cid is not None and not CID_RE.match(cid):
        raise ProtocolError(f"{frame}.cid: must be 32 lowercase hex characters")
    return cid


def _time(value: Any) -> float | None:
    """A time the gateway may add; anything but a finite number reads as none given
    (a push is never refused, nor dropped early, for a key it need not have sent)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int past any float
        return None
    return seconds if math.isfinite(seconds) else None


def _bool(frame: str, raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ProtocolError(f"{frame}.{key}: must be a boolean")
    return value


# Frames -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Client -> gateway, first frame: who I am and where I stopped reading."""

    appid: str
    cid: str | None = None
    token: str | None = field(default=None, repr=False)
    #: Highest seq the client has durably recorded; the gateway resends what follows.
    acked: int = 0
    v: int = VERSION
    #: The daemon's own secret: the gateway binds the cid to it at first registration,
    #: so nobody else (not even another daemon holding the app's token) can take the cid.
    secret: str | None = field(default=None, repr=False)
    type: ClassVar[str] = "hello"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Hello:
        return cls(
            appid=_str("hello", raw, "appid"),
            cid=_cid("hello", raw, optional=True),
            token=_str("hello", raw, "token", lo=0, hi=256, optional=True),
            acked=_int("hello", raw, "acked", lo=0, default=0),
            v=_int("hello", raw, "v", lo=0, default=VERSION),
            secret=_str("hello", raw, "secret", lo=16, hi=256, optional=True),
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """Client -> gateway: every push up to and including ``seq`` is recorded."""

    seq: int
    type: ClassVar[str] = "ack"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Ack:
        return cls(seq=_int("ack", raw, "seq", lo=1))


@dataclass(frozen=True, slots=True)
class Receipt:
    """Client -> gateway: the user saw (display) or activated (click) a message."""

    id: str
    event: str
    #: The sendMessage task the message belongs to, for the gateway's reports.
    taskid: str | None = None
    type: ClassVar[str] = "receipt"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Receipt:
        event = raw.get("event")
        if event not in ("display", "click"):
            raise ProtocolError("receipt.event: must be 'display' or 'click'")
        return cls(
            id=_str("receipt", raw, "id"),
            event=event,
            taskid=_str("receipt", raw, "taskid", lo=0, hi=64, optional=True),
        )


@dataclass(frozen=True, slots=True)
class Welcome:
    """Gateway -> client: registration done; ``acked`` is the gateway's cursor."""

    cid: str
    acked: int = 0
    #: Messages waiting for this cid at registration (informational).
    backlog: int = 0
    v: int = VERSION
    #: The gateway's clock (Unix seconds) as it welcomed: the daemon measures its own
    #: clock against it, to judge a push's hold_until (the gateway's clock) by its own.
    now: float | None = None
    type: ClassVar[str] = "welcome"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Welcome:
        return cls(
            cid=_cid("welcome", raw),
            acked=_int("welcome", raw, "acked", lo=0, default=0),
            backlog=_int("welcome", raw, "backlog", lo=0, default=0),
            v=_int("welcome", raw, "v", lo=0, default=VERSION),
            now=_time(raw.get("now")),
        )


#: PushMessage fields with a meaning of their own; the rest ride along in ``extra``.
_MESSAGE_KEYS = frozenset(
    {
        "title",
        "content",
        "payload",
        "force_notification",
        "open_url",
        "taskid",
        "offline",
        "hold_until",
    }
)
#: What the daemon does with a push while no app listens: show it (the phone maker's
#: channel does), hold it for the next listener, or drop it (online only).
OFFLINE = ("show", "hold", "drop")


@dataclass(frozen=True, slots=True)
class PushMessage:
    """The message body as the sender gave it to sendMessage."""

    title: str
    content: str
    payload: Any = None
    force_notification: bool = False
    open_url: str | None = None
    taskid: str | None = None
    #: While no app listens (OFFLINE): "show" unless the gateway says the sender wanted
    #: no phone maker's channel (settings.strategy 3, or no title and no content).
    offline: str = "show"
    #: With ``offline`` "hold": when the sender's ttl ends (Unix time, the gateway's
    #: clock). A phone's app gets such a message only if it opens before then.
    hold_until: float | None = None
    #: Other fields the sender set (sound, category, badge, channelId, ...), as given.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, frame: str = "push.message") -> PushMessage:
        if not isinstance(raw, dict):
            raise ProtocolError(f"{frame}: must be an object")
        return cls(
            title=_str(frame, raw, "title", lo=0, hi=MAX_FRAME_BYTES),
            content=_str(frame, raw, "content", lo=0, hi=MAX_FRAME_BYTES),
            payload=raw.get("payload"),
            force_notification=_bool(frame, raw, "force_notification"),
            open_url=_str(frame, raw, "open_url", lo=0, hi=MAX_FRAME_BYTES, optional=True),
            taskid=_str(frame, raw, "taskid", lo=0, hi=64, optional=True),
            # Unknown values read as "show": a newer gateway's idea never hides a push.
            offline=raw["offline"] if raw.get("offline") in OFFLINE else "show",
            hold_until=_time(raw.get("hold_until")),
            extra={k: v for k, v in raw.items() if k not in _MESSAGE_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as parse() reads it (None fields left out)."""
        out: dict[str, Any] = {"title": self.title, "content": self.content}
        if self.payload is not None:
            out["payload"] = self.payload
        if self.force_notification:
            out["force_notification"] = True
        if self.open_url is not None:
            out["open_url"] = self.open_url
        if self.taskid is not None:
            out["taskid"] = self.taskid
        if self.offline != "show":
            out["offline"] = self.offline
        if self.hold_until is not None:
            out["hold_until"] = self.hold_until
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Push:
    """Gateway -> client: one message; ``seq`` orders it per cid, ``id`` names it."""

    seq: int
    id: str
    message: PushMessage
    type: ClassVar[str] = "push"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Push:
        if "message" not in raw:
            raise ProtocolError("push.message: field required")
        return cls(
            seq=_int("push", raw, "seq", lo=1),
            id=_str("push", raw, "id"),
            message=PushMessage.parse(raw["message"]),
        )


@dataclass(frozen=True, slots=True)
class Error:
    """Either direction: a refused frame or request. ``fatal`` precedes a close."""

    code: str
    message: str
    fatal: bool = False
    type: ClassVar[str] = "error"

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Error:
        return cls(
            code=_str("error", raw, "code", hi=64),
            message=_str("error", raw, "message", lo=0, hi=MAX_FRAME_BYTES),
            fatal=_bool("error", raw, "fatal"),
        )


ClientFrame = Hello | Ack | Receipt | Error
ServerFrame = Welcome | Push | Error
_CLIENT: dict[str, Any] = {f.type: f for f in (Hello, Ack, Receipt, Error)}
_SERVER: dict[str, Any] = {f.type: f for f in (Welcome, Push, Error)}


def _parse(text: str | bytes, kinds: dict[str, Any], *, repair: bool = False) -> Any:
    """A frame holding a lone surrogate is broken: no store or encoder takes one. With
    ``repair`` they become U+FFFD instead (the daemon's side: refusing a push there
    loses it, a later ack covers it)."""
    if isinstance(text, bytes):
        raise ProtocolError("frame: binary frames are not part of the protocol")
    # Count UTF-8 bytes only when the characters alone cannot decide (4 bytes at most each).
    if len(text) > MAX_FRAME_BYTES or (
        len(text) * 4 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES
    ):
        raise ProtocolError(f"frame: larger than {MAX_FRAME_BYTES} bytes")
    code: int | None = None
    try:
        raw = json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
        if SURROGATE_ESCAPE.search(text):
            if repair:
                raw = well_formed(raw)
            else:
                code = lone_surrogate(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame: not JSON ({exc.msg} at {exc.pos})") from None
    except RecursionError:
        raise ProtocolError("frame: not acceptable JSON (nested too deep)") from None
    except ValueError as exc:  # NaN or Infinity, 1e400, an integer too long
        raise ProtocolError(f"frame: not acceptable JSON ({exc})") from None
    if code is not None:
        raise ProtocolError(
            f"frame: a string holds a lone surrogate (U+{code:04X}), which is not text"
        )
    if not isinstance(raw, dict):
        raise ProtocolError("frame: must be a JSON object")
    kind = raw.get("type")
    if kind is None:
        raise ProtocolError("type: field required")
    frame_class = kinds.get(kind) if isinstance(kind, str) else None
    if frame_class is None:
        raise ProtocolError(f"type: must be one of {', '.join(kinds)}; got {kind!r}")
    return frame_class.parse(raw)


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """Parse a frame sent by a daemon; raises ProtocolError naming field and rule."""
    frame: ClientFrame = _parse(text, _CLIENT)
    return frame


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Parse a frame sent by a gateway; raises ProtocolError naming field and rule.
    Lone surrogates in its strings are replaced by U+FFFD, as in createPushMessage's
    options: a JavaScript gateway that cut a title inside an emoji used to stall the
    link, the record of the whole batch failing on every redelivery."""
    frame: ServerFrame = _parse(text, _SERVER, repair=True)
    return frame


def encode(frame: ClientFrame | ServerFrame) -> str:
    """Serialise a frame; ``None`` fields are left out to keep frames small."""
    out: dict[str, Any] = {"type": frame.type}
    for name in frame.__dataclass_fields__:
        value = getattr(frame, name)
        if isinstance(value, PushMessage):
            value = value.to_dict()
        if value is not None:
            out[name] = value
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def websocket_url(base: str) -> str:
    """Accept ``ws://host:port`` (or http[s]://) and add the default path."""
    url = base.strip()
    if url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(
            f"gateway URL must start with ws://, wss://, http:// or https://: {base!r}"
        )
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not host:
        raise ValueError(f"gateway URL has no host: {base!r}")
    if not slash or not path:
        return f"{scheme}://{host}{DEFAULT_PATH}"
    return url


def http_url(base: str) -> str:
    """The gateway's HTTP base URL for a websocket or HTTP URL of it."""
    url = base.strip().rstrip("/")
    if url.startswith("ws://"):
        url = "http://" + url[len("ws://") :]
    elif url.startswith("wss://"):
        url = "https://" + url[len("wss://") :]
    scheme, _, rest = url.partition("://")
    host = rest.partition("/")[0]
    return f"{scheme}://{host}"

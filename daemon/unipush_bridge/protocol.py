"""The gateway websocket protocol, version 1, as plain data: no sockets, no clock.

Both ends (the daemon's link and the gateway's hub) parse and build frames here, so
the wire format lives in one place and is tested without I/O. docs/protocol.md is
the prose version of this module.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

VERSION = 1
#: Largest text frame either side accepts; the gateway caps payloads far below this.
MAX_FRAME_BYTES = 256 * 1024
#: Default websocket path on the gateway; a bare ws://host:port URL gets it appended.
DEFAULT_PATH = "/ws"

CID_RE = re.compile(r"^[0-9a-f]{32}$")


class CloseCode:
    """Websocket close codes the gateway uses when it ends a session on purpose."""

    BAD_HELLO = 4400  # first frame was not a valid hello
    UNAUTHORIZED = 4401  # wrong or missing client token
    UNKNOWN_APP = 4404  # the gateway does not serve this appId
    REPLACED = 4409  # a newer connection registered the same cid
    UNSUPPORTED_VERSION = 4426  # protocol version not spoken by the gateway


class ProtocolError(ValueError):
    """A frame broke a rule; ``str()`` names the field and the rule."""


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Frame):
    """Client -> gateway, first frame: who I am and where I stopped reading."""

    type: Literal["hello"] = "hello"
    v: int = VERSION
    appid: Annotated[str, Field(min_length=1, max_length=64)]
    cid: Annotated[str, Field(pattern=CID_RE.pattern)] | None = None
    token: Annotated[str, Field(max_length=256)] | None = None
    #: Highest seq the client has durably recorded; the gateway resends what follows.
    acked: Annotated[int, Field(ge=0)] = 0


class Ack(_Frame):
    """Client -> gateway: every push up to and including ``seq`` is recorded."""

    type: Literal["ack"] = "ack"
    seq: Annotated[int, Field(ge=1)]


class Receipt(_Frame):
    """Client -> gateway: the user saw (display) or activated (click) a message."""

    type: Literal["receipt"] = "receipt"
    id: Annotated[str, Field(min_length=1, max_length=64)]
    #: The sendMessage task the message belongs to, for the gateway's reports.
    taskid: Annotated[str, Field(max_length=64)] | None = None
    event: Literal["display", "click"]


class Welcome(_Frame):
    """Gateway -> client: registration done; ``acked`` is the gateway's cursor."""

    type: Literal["welcome"] = "welcome"
    v: int = VERSION
    cid: Annotated[str, Field(pattern=CID_RE.pattern)]
    acked: Annotated[int, Field(ge=0)] = 0
    #: Messages waiting for this cid at registration (informational).
    backlog: Annotated[int, Field(ge=0)] = 0


class PushMessage(_Frame):
    """The message body as the sender gave it to sendMessage."""

    model_config = ConfigDict(extra="allow", frozen=True)

    title: str
    content: str
    payload: Any = None
    force_notification: bool = False
    open_url: str | None = None
    taskid: str | None = None


class Push(_Frame):
    """Gateway -> client: one message; ``seq`` orders it per cid, ``id`` names it."""

    type: Literal["push"] = "push"
    seq: Annotated[int, Field(ge=1)]
    id: Annotated[str, Field(min_length=1, max_length=64)]
    message: PushMessage


class Error(_Frame):
    """Either direction: a refused frame or request. ``fatal`` precedes a close."""

    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = False


ClientFrame = Annotated[Hello | Ack | Receipt | Error, Field(discriminator="type")]
ServerFrame = Annotated[Welcome | Push | Error, Field(discriminator="type")]

_client_adapter: TypeAdapter[Hello | Ack | Receipt | Error] = TypeAdapter(ClientFrame)
_server_adapter: TypeAdapter[Welcome | Push | Error] = TypeAdapter(ServerFrame)


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """First failing field and its rule, as ``field.path: rule``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in err["loc"]) or "frame"
    return f"{prefix}{loc}: {err['msg']}"


def _parse(text: str | bytes, adapter: TypeAdapter[Any]) -> Any:
    if isinstance(text, bytes):
        raise ProtocolError("frame: binary frames are not part of the protocol")
    # Count UTF-8 bytes only when the characters alone cannot decide (4 bytes at most each).
    if len(text) > MAX_FRAME_BYTES or (
        len(text) * 4 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES
    ):
        raise ProtocolError(f"frame: larger than {MAX_FRAME_BYTES} bytes")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame: not JSON ({exc.msg} at {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # nesting too deep, integer too long
        raise ProtocolError(f"frame: not acceptable JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ProtocolError("frame: must be a JSON object")
    if "type" not in raw:
        raise ProtocolError("type: field required")
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        # The union's error location already starts with the frame type ("ack.seq").
        raise ProtocolError(describe_validation_error(exc)) from None


def parse_client_frame(text: str | bytes) -> Hello | Ack | Receipt | Error:
    """Parse a frame sent by a daemon; raises ProtocolError naming field and rule."""
    frame: Hello | Ack | Receipt | Error = _parse(text, _client_adapter)
    return frame


def parse_server_frame(text: str | bytes) -> Welcome | Push | Error:
    """Parse a frame sent by a gateway; raises ProtocolError naming field and rule."""
    frame: Welcome | Push | Error = _parse(text, _server_adapter)
    return frame


def encode(frame: _Frame) -> str:
    """Serialise a frame; ``None`` fields are left out to keep frames small."""
    return frame.model_dump_json(exclude_none=True)


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

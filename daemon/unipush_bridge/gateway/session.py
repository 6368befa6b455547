"""The gateway's side of one daemon connection, as a state machine without I/O."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError
from ..wire import gateway as protocol
from ..wire.gateway import CloseCode


@dataclass(frozen=True, slots=True)
class Register:
    """A valid hello: the service decides whether the cid may be registered (its secret,
    the new-registration limit) and where its cursor stands."""

    appid: str
    #: The cid to register: the client's own, or a new one the session made up.
    cid: str
    acked: int
    #: The daemon's secret from hello.secret (None: a daemon from before secrets).
    secret: str | None = field(default=None, repr=False)
    #: Where the connection comes from (the remote address), for per-source limits.
    peer: str = ""


@dataclass(frozen=True, slots=True)
class Acked:
    seq: int


@dataclass(frozen=True, slots=True)
class Receipted:
    id: str
    taskid: str | None
    event: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Send this frame; the link stays up."""

    frame: str


@dataclass(frozen=True, slots=True)
class Close:
    """Send ``frame`` (a fatal error), then close with ``code``."""

    frame: str
    code: int
    reason: str


Event = Register | Acked | Receipted | Reply | Close


def new_cid() -> str:
    return secrets.token_hex(16)


def _open(appid: str) -> str | None:
    return None


class ServerSession:
    """``client_token(appid)`` gives the token an app's daemons must present (None: no
    token needed) and raises LookupError for an appId the gateway does not serve."""

    def __init__(self, client_token: Callable[[str], str | None] = _open, peer: str = "") -> None:
        self._token_for = client_token
        self.peer = peer
        self.appid: str | None = None
        self.cid: str | None = None

    @property
    def registered(self) -> bool:
        return self.cid is not None

    def receive(self, text: str | bytes) -> list[Event]:
        try:
            frame = protocol.parse_client_frame(text)
        except ProtocolError as exc:
            if not self.registered:
                return [_close(CloseCode.BAD_HELLO, "bad_frame", str(exc))]
            return [Reply(_error("bad_frame", str(exc)))]
        if not self.registered:
            if not isinstance(frame, protocol.Hello):
                return [_close(CloseCode.BAD_HELLO, "bad_frame", "the first frame must be hello")]
            return [self._hello(frame)]
        if isinstance(frame, protocol.Ack):
            return [Acked(frame.seq)]
        if isinstance(frame, protocol.Receipt):
            return [Receipted(frame.id, frame.taskid, frame.event)]
        if isinstance(frame, protocol.Hello):
            return [Reply(_error("bad_frame", "hello: already registered"))]
        return []  # an error frame from the client: nothing to answer

    def _hello(self, hello: protocol.Hello) -> Event:
        if hello.v != protocol.VERSION:
            return _close(
                CloseCode.UNSUPPORTED_VERSION,
                "unsupported_version",
                f"hello.v: version {hello.v} is not supported; this gateway speaks "
                f"{protocol.VERSION}",
            )
        try:
            token = self._token_for(hello.appid)
        except LookupError:
            return _close(
                CloseCode.UNKNOWN_APP,
                "unknown_app",
                f"hello.appid: {hello.appid} is not served here",
            )
        if token is not None and not hmac.compare_digest(
            (hello.token or "").encode(), token.encode()
        ):
            return _close(CloseCode.UNAUTHORIZED, "unauthorized", "hello.token: wrong or missing")
        self.appid = hello.appid
        self.cid = hello.cid or new_cid()
        return Register(hello.appid, self.cid, hello.acked, hello.secret, self.peer)

    def welcome(self, cursor: int, backlog: int = 0, now: float | None = None) -> str:
        """``now``: the gateway's wall clock, for the daemon to measure its own against."""
        assert self.cid is not None
        return protocol.encode(
            protocol.Welcome(
                cid=self.cid,
                acked=cursor,
                backlog=backlog,
                now=None if now is None else round(now, 3),
            )
        )


def push_frame(seq: int, msg_id: str, message: dict[str, Any]) -> str:
    return push_frame_raw(seq, msg_id, json.dumps(message, ensure_ascii=False))


def push_frame_raw(seq: int, msg_id: str, message_json: str) -> str:
    """Built by hand around the stored JSON: sendMessage validated the message, and
    this is the hot path (a broadcast encodes its message once for every cid)."""
    return f'{{"type":"push","seq":{seq},"id":{json.dumps(msg_id)},"message":{message_json}}}'


def error_frame(code: str, message: str, fatal: bool = False) -> str:
    return protocol.encode(protocol.Error(code=code, message=message, fatal=fatal))


_error = error_frame


def refuse(code: int, err: str, message: str) -> Close:
    """A fatal error frame, then close with ``code``: the event that ends a session."""
    return Close(_error(err, message, fatal=True), code, err)


_close = refuse

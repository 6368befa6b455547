"""sendMessage's body: uni-push's rules as a pure function, no I/O.

The body is exactly what ``uniCloud.getPushManager({appId}).sendMessage(body)``
takes; failures carry uni's errCode and an errMsg that names the field and rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: One call reaches at most this many devices (uni-push's limit).
MAX_CIDS = 500
#: settings.ttl bounds in milliseconds: default 1 h, at most 3 days, -1 = online only.
DEFAULT_TTL_MS = 3_600_000
MAX_TTL_MS = 259_200_000
#: Fields carried to the daemon as they are (besides title, content, payload).
CARRIED = ("force_notification", "open_url", "sound", "category", "badge", "channelId")


class UniError(Exception):
    """An answer in uni's envelope with an HTTP status for its class."""

    def __init__(self, err_code: int, err_msg: str, status: int = 400) -> None:
        super().__init__(err_msg)
        self.err_code = err_code
        self.err_msg = err_msg
        self.status = status

    def envelope(self) -> dict[str, Any]:
        return {"errCode": self.err_code, "errMsg": self.err_msg, "data": None}


def invalid(field: str, rule: str) -> UniError:
    return UniError(20001, f"illegal params: {field} {rule}")


@dataclass(frozen=True, slots=True)
class SendRequest:
    cids: tuple[str, ...]
    message: dict[str, Any]
    request_id: str | None
    #: -1 means deliver only to a cid that is online now.
    ttl_ms: int


def parse_send_message(body: Any) -> SendRequest:
    if not isinstance(body, dict):
        raise UniError(1, "the argument must be an object")
    cids = _cids(body.get("push_clientid"))
    message: dict[str, Any] = {
        "title": _text(body, "title"),
        "content": _text(body, "content"),
        "payload": _payload(body),
    }
    force = body.get("force_notification", False)
    if not isinstance(force, bool):
        raise invalid("force_notification", "must be a boolean")
    for key in CARRIED:
        if body.get(key) is not None:
            message[key] = body[key]
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 10 <= len(request_id) <= 32
    ):
        raise invalid("request_id", "must be a string of 10 to 32 characters")
    return SendRequest(cids, message, request_id, _ttl(body.get("settings")))


def _cids(value: Any) -> tuple[str, ...]:
    if value is None:
        raise invalid("push_clientid", "is required")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) and c for c in items):
        raise invalid("push_clientid", "must be a non-empty string or a list of them")
    if not items:
        raise invalid("push_clientid", "must not be an empty list")
    if len(items) > MAX_CIDS:
        raise invalid("push_clientid", f"must list at most {MAX_CIDS} cids")
    return tuple(dict.fromkeys(items))


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None or value == "":
        raise invalid(field, "is required")
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value


def _payload(body: dict[str, Any]) -> Any:
    value = body.get("payload")
    if value is None or value == "":
        raise invalid("payload", "is required (a string or an object)")
    if not isinstance(value, str | dict):
        raise invalid("payload", "must be a string or an object")
    return value


def _ttl(settings: Any) -> int:
    if settings is None:
        return DEFAULT_TTL_MS
    if not isinstance(settings, dict):
        raise invalid("settings", "must be an object")
    ttl = settings.get("ttl", DEFAULT_TTL_MS)
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise invalid("settings.ttl", "must be an integer number of milliseconds")
    if ttl != -1 and not 0 <= ttl <= MAX_TTL_MS:
        raise invalid("settings.ttl", f"must be -1 or between 0 and {MAX_TTL_MS}")
    return ttl

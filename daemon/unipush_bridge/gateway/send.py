"""sendMessage's body: uni-push's rules as a pure function, no I/O.

The body is exactly what ``uniCloud.getPushManager({appId}).sendMessage(body)``
takes; failures carry uni's errCode and an errMsg that names the field and rule.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ILLEGAL, NOT_OBJECT, UniError, invalid

#: A call reaches at most 500 devices; uni-push accepts lists of up to 1000 cids or
#: aliases and ignores the devices past 500, and up to 500 uni-id users or tags.
MAX_DEVICES = 500
MAX_LIST = {
    "push_clientid": 1000,
    "getui_alias": 1000,
    "user_id": 500,
    "user_tag": 500,
    "device_id": 500,
}
#: settings.ttl bounds in milliseconds: default 1 h, at most 3 days, -1 = online only.
DEFAULT_TTL_MS = 3_600_000
MAX_TTL_MS = 259_200_000
MAX_OPEN_URL = 300
MAX_GROUP_NAME = 100
GROUP_NAME_RE = re.compile(r"[\w\-.\u4e00-\u9fff]+")
#: A whole message must fit a websocket frame to the daemon with room to spare.
MAX_MESSAGE_BYTES = 128 * 1024
#: Fields carried to the daemon as they are (besides title, content, payload).
CARRIED = ("force_notification", "open_url", "sound", "category", "badge", "channelId")
#: Any request body nests at most this deep (uni's fields are flat; payload is the
#: app's own, and 32 levels is far past any real one). Deeper bodies broke the
#: encoders on the way (RecursionError: a 500 here, a dropped link in the daemon).
MAX_DEPTH = 32
#: The passed-on text fields (sound, channelId, category's values) at most.
MAX_CARRIED_TEXT = 128
#: category as uni's server takes it: a string, or {vendor: category} of strings.
MAX_CATEGORY_KEYS = 16
#: Compact JSON, as the message travels (and as uniCloud's JSON.stringify writes it).
SEP = (",", ":")
#: badge: a number N, or "+N" / "-N" (uni: add, subtract, set).
BADGE_RE = re.compile(r"[+-]?\d{1,9}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Text limits. uni-push's own come from phone vendors; desktops can take more."""

    title: int
    content: int
    payload: int
    name: str

    @classmethod
    def for_mode(cls, strict: bool) -> Limits:
        return STRICT if strict else RELAXED


#: uni-push's as DCloud's own server code meets them: uni-im cuts a title to 20
#: characters and the text to 50 (``title.slice(0, 20)``) and sends payloads past the
#: docs' 800; uni-push-admin takes payloads of up to 3072 (Getui's transparent limit).
STRICT = Limits(title=20, content=50, payload=3072, name="uni-push's limit")
RELAXED = Limits(title=256, content=2048, payload=16_384, name="this gateway's limit")

#: Targets that uni maps through uni-id's tables, and pages through with before_id.
UNIID_TARGETS = ("user_id", "user_tag", "device_id")

#: Target selectors, mutually exclusive; none at all means broadcast.
TARGET_KEYS = (
    "push_clientid",
    "getui_alias",
    "getui_custom_tag",
    "getui_big_data_tag",
    "user_id",
    "user_tag",
    "device_id",
)


@dataclass(frozen=True, slots=True)
class Target:
    #: push_clientid | getui_alias | getui_custom_tag | user_id | user_tag | device_id
    #: | broadcast
    kind: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SendRequest:
    target: Target
    message: dict[str, Any]
    request_id: str | None
    #: -1 means deliver only to a cid that is online now.
    ttl_ms: int
    group_name: str | None = None
    #: A uni-id target reaches its devices 500 at a time, in cid order: the answer's
    #: ``before_id`` is where the next call (with it) starts (uni-push-admin's uni-push-co).
    before_id: str | None = None
    #: ``message`` as compact JSON, encoded once for the size check and kept: the
    #: stored body is made from it (see stored_json), not encoded a second time.
    message_json: str = field(default="", compare=False, repr=False)

    def stored_json(self, taskid: str, hold_until: float | None = None) -> str:
        """The body stored and pushed: the message with its task id (and, held for the
        next app, until when), as ``json.dumps({**message, ...})`` compact would make it."""
        text = self.message_json or json.dumps(self.message, ensure_ascii=False, separators=SEP)
        extra = f',"taskid":{json.dumps(taskid)}'
        if hold_until is not None:
            extra += f',"hold_until":{json.dumps(hold_until)}'
        return text[:-1] + extra + "}"

    @property
    def cids(self) -> tuple[str, ...]:
        return self.target.values if self.target.kind == "push_clientid" else ()


def parse_send_message(body: Any, limits: Limits = STRICT) -> SendRequest:
    if not isinstance(body, dict):
        raise UniError(NOT_OBJECT, "the argument must be an object")
    # uni reads an empty string as unset: uni-push-admin sends its whole form, with
    # open_url, sound, badge and payload left "" (and a Go client sends null).
    body = {k: v for k, v in body.items() if v is not None and v != ""}
    if "forceNotification" in body:  # the spelling of uni's own sendMessage table
        body.setdefault("force_notification", body.pop("forceNotification"))
    target = _target(body)
    # title and content may both be left out: a transparent message, as uni-im sends
    # when it wants no notification (it deletes them); the daemon then raises a
    # receive event and shows nothing unless force_notification asks.
    message: dict[str, Any] = {
        "title": _text(body, "title", limits.title, limits),
        "content": _text(body, "content", limits.content, limits),
    }
    transparent = not (message["title"] or message["content"])
    if "payload" in body:
        message["payload"] = _payload(body["payload"], limits)
    elif transparent:
        raise invalid("payload", "is required when title and content are left out")
    force = body.get("force_notification", False)
    if not isinstance(force, bool):
        raise invalid("force_notification", "must be a boolean")
    _open_url(body.get("open_url"))
    _carried_scalars(body)
    for key in CARRIED:
        if body.get(key) is not None:
            message[key] = body[key]
    text = json.dumps(message, ensure_ascii=False, separators=SEP)
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise invalid(
            "message",
            f"must be at most {MAX_MESSAGE_BYTES} bytes of JSON in all "
            "(title, content, payload and the carried fields)",
        )
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 10 <= len(request_id) <= 32
    ):
        raise invalid("request_id", "must be a string of 10 to 32 characters")
    group_name = body.get("group_name")
    if group_name is not None and (
        not isinstance(group_name, str)
        or not 0 < len(group_name) <= MAX_GROUP_NAME
        or not GROUP_NAME_RE.fullmatch(group_name)
    ):
        raise invalid(
            "group_name",
            f"must be 1 to {MAX_GROUP_NAME} letters, digits, '_', '-' or '.' "
            "(no special characters)",
        )
    before_id = body.get("before_id")
    if before_id is not None and not (isinstance(before_id, str) and len(before_id) <= 64):
        raise invalid("before_id", "must be the before_id string of the previous answer")
    ttl_ms = _ttl(body.get("settings"))
    if transparent or _getui_only(body.get("settings")):
        # No phone maker's channel: a phone shows nothing while its app is closed, and
        # the app gets the message when it opens (or never, online only).
        message["offline"] = "hold" if ttl_ms > 0 else "drop"
        text = text[:-1] + f',"offline":"{message["offline"]}"}}'
    return SendRequest(target, message, request_id, ttl_ms, group_name, before_id, text)


def _getui_only(settings: Any) -> bool:
    """settings.strategy 3: Getui's own channel only, none of the phone makers'.
    uni-im sends ``{"default": 3}`` for its system messages and recalls; a desktop has
    no vendor key of its own, so ``default`` (or a bare 3) is what counts."""
    strategy = settings.get("strategy") if isinstance(settings, dict) else None
    if isinstance(strategy, dict):
        strategy = strategy.get("default")
    return strategy == 3


def _target(body: dict[str, Any]) -> Target:
    given = [key for key in TARGET_KEYS if body.get(key, []) != []]  # "" and null: gone already
    if len(given) > 1:
        raise invalid(", ".join(given), "are exclusive targets: give only one of them")
    if not given:
        return Target("broadcast")
    key = given[0]
    value = body[key]
    if key == "getui_big_data_tag":
        raise UniError(ILLEGAL, "illegal params: getui_big_data_tag is not supported here")
    if key == "getui_custom_tag":
        # One tag a call; uni-push-admin sends it as a one-element list.
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or not value:
            raise invalid(key, "must be one tag: a string, or a list of one string")
        return Target(key, (value,))
    return Target(key, _strings(key, value, MAX_LIST[key]))


def _strings(key: str, value: Any, limit: int) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise invalid(key, "must be a non-empty string or a list of them")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            # Which one: a list built as users.map(u => u.clientId) has a gap where a
            # user never registered (null, "", a number), and the sender must find it.
            raise invalid(
                key,
                f"must be a non-empty string or a list of them; item {i} is {_shown(item)}",
            )
    if len(items) > limit:
        raise invalid(key, f"must list at most {limit} values")
    return tuple(dict.fromkeys(items))


def _shown(value: Any) -> str:
    """A refused value as the sender wrote it (JSON), cut short: it is echoed back."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(body: dict[str, Any], field: str, limit: int, limits: Limits) -> str:
    value = body.get(field, "")
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if len(value) > limit:
        raise invalid(field, _too_long(limit, limits))
    return value


def _payload(value: Any, limits: Limits) -> Any:
    if not isinstance(value, str | dict):
        raise invalid("payload", "must be a string or an object")
    # Measured as the compact JSON that travels (and that uniCloud's JSON.stringify makes).
    compact = json.dumps(value, ensure_ascii=False, separators=SEP)
    size = len(value) if isinstance(value, str) else len(compact)
    if size > limits.payload:
        raise invalid("payload", _too_long(limits.payload, limits) + " (as JSON text)")
    return value


def _too_long(limit: int, limits: Limits) -> str:
    hint = "; set strict_limits = false to relax it" if limits is STRICT else ""
    return f"must be at most {limit} characters ({limits.name}{hint})"


def _carried_scalars(body: dict[str, Any]) -> None:
    """badge, sound, channelId and category are flat, as uni defines them: the daemon
    shows them, and a nested value has no meaning there (and could be 30 KB deep)."""
    badge = _whole(body.get("badge"))
    if badge is not None and not (
        (isinstance(badge, int) and not isinstance(badge, bool) and abs(badge) < 10**9)
        or (isinstance(badge, str) and BADGE_RE.fullmatch(badge))
    ):
        raise invalid("badge", 'must be an integer or a string "N", "+N" or "-N"')
    if isinstance(badge, int) and not isinstance(badge, bool):
        body["badge"] = badge  # passed on as the integer it is
    for key in ("sound", "channelId"):
        value = body.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_CARRIED_TEXT):
            raise invalid(key, f"must be a string of at most {MAX_CARRIED_TEXT} characters")
    category = body.get("category")
    if category is None or (isinstance(category, str) and len(category) <= MAX_CARRIED_TEXT):
        return
    if (
        isinstance(category, dict)
        and len(category) <= MAX_CATEGORY_KEYS
        and all(
            len(k) <= MAX_CARRIED_TEXT and isinstance(v, str) and len(v) <= MAX_CARRIED_TEXT
            for k, v in category.items()
        )
    ):
        return
    raise invalid(
        "category",
        f"must be a string, or an object of at most {MAX_CATEGORY_KEYS} vendor names to "
        f'category strings such as {{"huawei": "EXPRESS"}} (each at most '
        f"{MAX_CARRIED_TEXT} characters)",
    )


def check_json_value(value: Any, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Any method's parsed body: nesting at most ``max_depth`` deep, every string
    valid Unicode (JSON's \\ud800 escapes parse to lone surrogates that no encoder
    takes later), and every number finite (Python's json reads NaN, Infinity and 1e400,
    which no JSON has, and writes them back as NaN and Infinity: a push frame no
    strict parser takes). Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            _unicode(item, where, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise invalid(
                _path(where, path),
                f"is {item!r}: numbers must be finite (NaN and Infinity are not JSON)",
            )
        elif isinstance(item, dict | list):
            if len(path) >= max_depth:
                raise invalid(_path(where, path), f"nests too deep: at most {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _unicode(key, where, (*path, key))
                    stack.append((child, (*path, key)))
            else:
                stack.extend((child, (*path, i)) for i, child in enumerate(item))


def _unicode(text: str, where: str, path: tuple[str | int, ...]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(
            _path(where, path),
            f"holds a lone surrogate (U+{ord(text[exc.start]):04X}), which is not valid "
            "Unicode: send characters, not halves of a \\u escape pair",
        ) from None


def _path(where: str, path: tuple[str | int, ...]) -> str:
    """``title``, ``payload.a[2]``; the body itself by ``where``."""
    if not path:
        return where
    text = where if isinstance(path[0], int) else ""
    for part in path[:3] if len(path) > 6 else path:  # a deep path: its start will do
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text + ("…" if len(path) > 6 else "")


def _open_url(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise invalid("open_url", "must be an http:// or https:// URL")
    if len(value) >= MAX_OPEN_URL:
        raise invalid("open_url", f"must be shorter than {MAX_OPEN_URL} characters")


def _whole(value: Any) -> Any:
    """A JSON number that is whole, as the int it is; other values as they are. JSON
    has one kind of number, and uniCloud's JavaScript reads ``5400000.0`` (Python's
    ``1.5 * 3600 * 1000``, a Java double) as 5400000."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _ttl(settings: Any) -> int:
    if settings is None:
        return DEFAULT_TTL_MS
    if not isinstance(settings, dict):
        raise invalid("settings", "must be an object")
    ttl = _whole(settings.get("ttl", DEFAULT_TTL_MS))
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise invalid("settings.ttl", "must be an integer number of milliseconds")
    if ttl != -1 and not 0 <= ttl <= MAX_TTL_MS:
        raise invalid("settings.ttl", f"must be -1 or between 0 and {MAX_TTL_MS}")
    return ttl

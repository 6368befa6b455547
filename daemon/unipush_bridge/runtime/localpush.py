"""createPushMessage's and setPushChannel's options: uni's rules as pure functions.

A bad option fails the call with uni's reason (``createPushMessage:fail <reason>``),
naming the option and the rule; unknown options are ignored, as uni-app does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ApiFail
from ..wire import strictjson
from ..wire.jsnumber import js_number
from ..wire.strictjson import finite_float, reject_constant

DEFAULT_CHANNEL = "DcloudChannelID"
#: Longest delay accepted: a scheduled notification is kept on disk until then.
MAX_DELAY_S = 30 * 24 * 3600
#: A `when` at most this far from the epoch, in ms: JavaScript Date's range (ECMAScript's
#: TimeClip), so every time taken is one a page could have made, and history keeps a number.
MAX_WHEN_MS = 8_640_000_000_000_000
#: Longest title accepted; what is shown is cut shorter (notifier.MAX_TITLE).
MAX_TEXT = 64 * 1024
#: channelId and category at most: what the gateway passes on in a push (send.py), so
#: that a push's data handed back to createPushMessage is always taken.
MAX_PASSED_ON = 128
IMPORTANCE_URGENCY = {2: "low", 3: "normal", 4: "critical"}
LOCKSCREEN = (0, 1, -1, -1000)


#: Deepest nesting of a payload object parsed from text for a click (the event around it
#: adds 3 levels; the local API's lines go to 32).
MAX_PAYLOAD_DEPTH = 28

#: An ISO date with no time: JavaScript's Date takes it as UTC (with a time, as local).
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class OptionError(ApiFail):
    """A bad option; the text is the reason after ``<api>:fail``."""


@dataclass(frozen=True, slots=True)
class LocalPush:
    content: str
    title: str | None = None
    payload: Any = None
    icon: str | None = None
    sound: str = "system"
    cover: bool = False
    delay: float = 0.0
    #: The time to show on the notification, ms since the epoch (recorded in history).
    when: int | None = None
    channel_id: str = DEFAULT_CHANNEL
    category: str | None = None
    #: The page to open (uni's ``path``): carried into the click's data.
    path: str | None = None


def well_formed(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every lone surrogate (a JavaScript string can hold one, JSON
    carries it as an escape) replaced by U+FFFD, and split pairs joined: neither
    SQLite nor D-Bus can store such text (issue 10 item 3)."""
    fixed: dict[str, Any] = strictjson.well_formed(params)  # ``params`` itself if clean
    return fixed


def click_payload(payload: Any) -> Any:
    """The payload a local notification's click carries, as uni's runtimes make it: a
    string that is a JSON object's text comes back as that object, any other value as it
    was given (uni-app x Android, PushMessage.uts getJsonObject: ``JSON.parseObject(
    mPayload)``, else the string; html5plus PushMessage.payload likewise)."""
    if not isinstance(payload, str) or not payload.lstrip().startswith("{"):
        return payload
    try:
        value = json.loads(payload, parse_constant=reject_constant, parse_float=finite_float)
    except (ValueError, RecursionError):
        return payload
    if not isinstance(value, dict) or _depth(value) > MAX_PAYLOAD_DEPTH:
        return payload
    return strictjson.well_formed(value)


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            subs = item.values() if isinstance(item, dict) else item
            stack.extend((sub, depth + 1) for sub in subs)
    return deepest


def _opt_str(params: dict[str, Any], key: str, limit: int = 256) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionError(f"{key} must be a string")
    if len(value) > limit:
        raise OptionError(f"{key} must be at most {limit} characters")
    return value


def parse_local_push(params: dict[str, Any]) -> LocalPush:
    """uni checks only ``content``; the other options follow uni-app x, which reads
    each with a default (``getNumber("delay") ?? 0``), so a page that hands a receive's
    data straight back (``createPushMessage(res.data)``, as uni-app itself does for
    force_notification) is shown, whatever sound or category the sender set."""
    content = params.get("content")
    if content is None or content == "":
        raise OptionError("content is required")
    if not isinstance(content, str):
        raise OptionError("content must be a string")
    sound = params.get("sound")
    if sound is not None and not isinstance(sound, str):
        raise OptionError("sound must be 'system' or 'none'")
    return LocalPush(
        content=content,
        title=_opt_str(params, "title", MAX_TEXT),
        payload=params.get("payload"),
        icon=_opt_str(params, "icon", 2048),
        # uni-app x: anything but "none" is the system sound (a sender's "pushsound").
        sound="none" if sound == "none" else "system",
        cover=_cover(params.get("cover")),
        delay=_delay(params.get("delay")),
        when=_when(params.get("when")),
        channel_id=_opt_str(params, "channelId", MAX_PASSED_ON) or DEFAULT_CHANNEL,
        # A sender's vendor object ({"huawei": "IM"}) has no meaning for a desktop.
        category=_opt_str(params, "category", MAX_PASSED_ON)
        if isinstance(params.get("category"), str)
        else None,
        path=_opt_str(params, "path", 2048) or None,
    )


def _cover(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise OptionError("cover must be a boolean")
    return value


def _delay(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = js_number(value)
        if value is None:
            raise OptionError(
                "delay must be a number of seconds, 0 or more; as a string, a decimal"
                ' numeral such as "2.5"'
            )
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise OptionError("delay must be a number of seconds, 0 or more")
    if value > MAX_DELAY_S:
        raise OptionError(f"delay must be at most {MAX_DELAY_S} seconds (30 days)")
    return float(value)


def _when(value: Any) -> int | None:
    """uni-app x passes ms since the epoch; uni-app passes a Date (ISO text over JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise OptionError("when must be a time: ms since the epoch or an ISO 8601 date")
    if isinstance(value, str) and (ms := js_number(value)) is not None:
        value = ms  # ms, as a string (a Date.now() that went through a form)
    if isinstance(value, int | float) and not math.isnan(value):
        if not -MAX_WHEN_MS <= value <= MAX_WHEN_MS:
            raise OptionError(
                f"when must be within {MAX_WHEN_MS} ms (JavaScript Date's range, 275760 years)"
                " of the epoch"
            )
        return int(value)
    if isinstance(value, str):
        try:
            text = value.replace("Z", "+00:00")
            if _DATE_ONLY.fullmatch(text):
                text += "T00:00:00+00:00"  # as JS's Date reads a date alone: UTC midnight
            return int(datetime.fromisoformat(text).timestamp() * 1000)
        except ValueError:
            pass
    raise OptionError("when must be a time: ms since the epoch or an ISO 8601 date")


@dataclass(frozen=True, slots=True)
class Channel:
    channel_id: str
    channel_desc: str
    sound_name: str | None = None
    enable_lights: bool = False
    enable_vibration: bool = False
    importance: int = 3
    lockscreen_visibility: int = -1000

    @property
    def urgency(self) -> str:
        return IMPORTANCE_URGENCY[self.importance]

    def to_uni(self) -> dict[str, Any]:
        """The channel as setPushChannel takes it."""
        return {
            "channelId": self.channel_id,
            "channelDesc": self.channel_desc,
            "soundName": self.sound_name,
            "enableLights": self.enable_lights,
            "enableVibration": self.enable_vibration,
            "importance": self.importance,
            "lockscreenVisibility": self.lockscreen_visibility,
        }


#: The channel every app has, as Android's uni runtime creates it.
DEFAULT = Channel(DEFAULT_CHANNEL, "Default")


def parse_channel(params: dict[str, Any]) -> Channel:
    channel_id = _opt_str(params, "channelId", 64)
    if not channel_id:
        raise OptionError("channelId is required")
    desc = _opt_str(params, "channelDesc")
    if not desc:
        raise OptionError("channelDesc is required")
    sound_name = _opt_str(params, "soundName", 64)
    if sound_name is not None and ("/" in sound_name or sound_name.startswith(".")):
        raise OptionError("soundName must be a file name in the sounds directory, no path")
    flags = {}
    for key in ("enableLights", "enableVibration"):
        value = params.get(key, False)
        if not isinstance(value, bool):
            raise OptionError(f"{key} must be a boolean")
        flags[key] = value
    importance = params.get("importance", 3)
    if not isinstance(importance, int) or isinstance(importance, bool) or not 0 <= importance <= 5:
        raise OptionError(
            "importance must be one of Android's 0 to 5: 2 (low), 3 (default), 4 (high)"
        )
    # Android's 0 (none) and 1 (min) are low too, its 5 (max) is high.
    importance = min(max(importance, 2), 4)
    lockscreen = params.get("lockscreenVisibility", -1000)
    if (
        not isinstance(lockscreen, int)
        or isinstance(lockscreen, bool)
        or (lockscreen not in LOCKSCREEN)
    ):
        raise OptionError("lockscreenVisibility must be 0, 1, -1 or -1000")
    return Channel(
        channel_id,
        desc,
        sound_name,
        flags["enableLights"],
        flags["enableVibration"],
        importance,
        lockscreen,
    )

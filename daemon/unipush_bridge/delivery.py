"""Where a push goes and what the app sees: uni's delivery rules as pure functions.

See DESIGN.md "Semantics": receive to listeners when the app is online, a native
notification when it is not or when the sender forces one, click on activation.
"""

from __future__ import annotations

import enum
from typing import Any

from .protocol import PushMessage

UNIPUSH_VERSION = "2.0"


class Route(enum.Enum):
    RECEIVE = "receive"  # every subscribed listener gets a receive event
    NOTIFY = "notify"  # a native notification; activation gives a click


def route(message: PushMessage, listeners: int) -> Route:
    """App online (a listener is subscribed) gets receive unless the sender forces a banner."""
    if message.force_notification or listeners == 0:
        return Route.NOTIFY
    return Route.RECEIVE


def event_data(message: PushMessage) -> dict[str, Any]:
    """The ``data`` of a receive or click event, in uni's shape.

    The payload is passed on as the sender gave it (object or string); other fields
    the sender set (force_notification, channelId, category, ...) ride along.
    """
    data: dict[str, Any] = {
        "unipush_version": UNIPUSH_VERSION,
        "title": message.title,
        "content": message.content,
        "payload": message.payload,
    }
    if message.force_notification:
        data["force_notification"] = True
    for key, value in message.extra.items():
        data.setdefault(key, value)
    return data


def receive_event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "receive", "data": data}


def click_event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "click", "data": data}

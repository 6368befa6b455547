"""The capture server's notification table: ids, replaces_id, actions and close reasons.

Sans-I/O: every call returns the signals the server must emit (the D-Bus glue in
:mod:`.capture` sends them), so the rules of the Desktop Notifications spec are tested
without a bus. Reasons are the spec's: 1 expired, 2 dismissed by the user, 3 closed by
CloseNotification, 4 undefined.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ActionInvoked",
    "CloseReason",
    "Notification",
    "NotificationClosed",
    "NotificationTable",
    "Signal",
    "TableError",
]


class CloseReason:
    """NotificationClosed's reason codes (spec 1.2, "NotificationClosed")."""

    EXPIRED = 1
    DISMISSED = 2
    CLOSED = 3
    UNDEFINED = 4


@dataclass(frozen=True)
class ActionInvoked:
    id: int
    action_key: str


@dataclass(frozen=True)
class NotificationClosed:
    id: int
    reason: int


Signal = ActionInvoked | NotificationClosed


@dataclass
class Notification:
    """One Notify call as the server received it, with what became of it."""

    id: int
    app_name: str
    app_icon: str
    summary: str
    body: str
    #: (key, label) pairs from Notify's flat ``actions`` list.
    actions: list[tuple[str, str]]
    hints: dict[str, Any]
    expire_timeout: int
    #: The D-Bus unique name of the sender ("" when not known).
    sender: str = ""
    #: How many Notify calls replaced it in place (replaces_id).
    replaced: int = 0
    #: None while shown, else the close reason.
    closed: int | None = None
    #: Action keys invoked on it, in order.
    invoked: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.closed is None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only (for the control API); hints already are."""
        return {
            "id": self.id,
            "app_name": self.app_name,
            "app_icon": self.app_icon,
            "summary": self.summary,
            "body": self.body,
            "actions": [list(pair) for pair in self.actions],
            "hints": self.hints,
            "expire_timeout": self.expire_timeout,
            "sender": self.sender,
            "replaced": self.replaced,
            "closed": self.closed,
            "invoked": list(self.invoked),
        }


class TableError(ValueError):
    """A control request the table must refuse (unknown id, closed, no such action)."""


class NotificationTable:
    """Every notification seen, by id. Ids start at 1 and never repeat (0 is "none")."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.by_id: dict[int, Notification] = {}

    def notify(
        self,
        app_name: str,
        replaces_id: int,
        app_icon: str,
        summary: str,
        body: str,
        actions: list[str],
        hints: dict[str, Any],
        expire_timeout: int,
        sender: str = "",
    ) -> int:
        """Record a Notify call and return its id.

        A ``replaces_id`` naming a notification still open updates it in place and keeps
        its id; any other value (0, unknown or closed) gets a new id, as the spec says.
        """
        if len(actions) % 2:
            raise TableError(f"actions must be key/label pairs, got {len(actions)} strings")
        pairs = list(zip(actions[0::2], actions[1::2], strict=True))
        old = self.by_id.get(replaces_id) if replaces_id else None
        if old is not None and old.open:
            old.app_name, old.app_icon, old.summary, old.body = app_name, app_icon, summary, body
            old.actions, old.hints, old.expire_timeout = pairs, hints, expire_timeout
            old.replaced += 1
            return old.id
        nid = next(self._ids)
        self.by_id[nid] = Notification(
            nid, app_name, app_icon, summary, body, pairs, hints, expire_timeout, sender
        )
        return nid

    def get(self, nid: int) -> Notification:
        try:
            return self.by_id[nid]
        except KeyError:
            raise TableError(f"id: no notification {nid} (known: {sorted(self.by_id)})") from None

    def close(self, nid: int, reason: int) -> list[Signal]:
        """Close ``nid`` with ``reason``; closing a closed or unknown id emits nothing
        (CloseNotification on it is not an error for the caller, per the spec)."""
        if not 1 <= reason <= 4:
            raise TableError(f"reason: must be 1 to 4 (the spec's close reasons), got {reason}")
        found = self.by_id.get(nid)
        if found is None or not found.open:
            return []
        found.closed = reason
        return [NotificationClosed(nid, reason)]

    def close_call(self, nid: int) -> list[Signal]:
        """CloseNotification from a client: reason 3."""
        return self.close(nid, CloseReason.CLOSED)

    def click(self, nid: int, action_key: str = "default") -> list[Signal]:
        """A user's click on an action, as dunst does it: ActionInvoked, then the popup
        closes as dismissed by the user (reason 2)."""
        found = self.get(nid)
        if not found.open:
            raise TableError(f"id: notification {nid} is closed (reason {found.closed})")
        keys = [key for key, _ in found.actions]
        if action_key not in keys:
            raise TableError(f"action: {nid} has no action {action_key!r} (it has {keys})")
        found.invoked.append(action_key)
        return [ActionInvoked(nid, action_key), *self.close(nid, CloseReason.DISMISSED)]

    def dismiss(self, nid: int) -> list[Signal]:
        """The user closes it without an action (reason 2)."""
        self._must_be_open(nid)
        return self.close(nid, CloseReason.DISMISSED)

    def expire(self, nid: int) -> list[Signal]:
        """Its timeout passed (reason 1). The capture server never expires on its own:
        a test decides when time is up."""
        self._must_be_open(nid)
        return self.close(nid, CloseReason.EXPIRED)

    def _must_be_open(self, nid: int) -> None:
        found = self.get(nid)
        if not found.open:
            raise TableError(f"id: notification {nid} is closed (reason {found.closed})")

    def shown(self) -> list[Notification]:
        return [n for n in self.by_id.values() if n.open]

    def all(self) -> list[Notification]:
        return list(self.by_id.values())

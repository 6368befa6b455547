"""The plugin's dunst-backed server: real dunst under Xvfb on a private bus (the same
:class:`.notifstack.DunstStack` our e2e suite uses), read through the same interface as
the capture server. Notifications come from the bus monitor (every Notify with its hints
and the id dunst answered); a closed one is in dunst's history.
"""

from __future__ import annotations

from typing import Any

from .notifstack import DunstStack, require_tools
from .servers import Shown, wait_one
from .table import Notification

__all__ = ["DunstBackend"]


def _shown(call: dict[str, Any]) -> Shown:
    actions = list(call.get("actions") or [])
    return Notification(
        id=int(call["id"]),
        app_name=str(call.get("app_name", "")),
        app_icon=str(call.get("icon", "")),
        summary=str(call.get("summary", "")),
        body=str(call.get("body", "")),
        actions=list(zip(actions[0::2], actions[1::2], strict=False)),
        hints=dict(call.get("hints") or {}),
        expire_timeout=int(call.get("timeout", -1)),
        sender=str(call.get("sender", "")),
    )


class DunstBackend:
    """dunst as the plugin's notification server (``--unipush-server=dunst``)."""

    def __init__(self, stack: DunstStack | None = None) -> None:
        """On ``stack`` (a session's, reset for this test: Xvfb and dunst start once),
        else on a stack of its own that :meth:`stop` ends."""
        if stack is None:
            require_tools()  # skips (fails under CI) with the reason when dunst is missing
            self._own = True
            stack = DunstStack(monitor=True).start()
        else:
            self._own = False
            stack.reset()
        self.stack = stack
        self.address = stack.bus_address
        self.env = {"DISPLAY": stack.display}

    def notifications(self) -> list[Shown]:
        closed = {e.get("id") for e in self.stack.history()}
        latest: dict[int, Shown] = {}
        for call in self.stack.notify_calls():
            if isinstance(call.get("id"), int) and call["id"] not in closed:
                latest[call["id"]] = _shown(call)  # a replaces_id call updates in place
        return sorted(latest.values(), key=lambda n: n.id)

    def wait_one(self, title: str | None, timeout: float) -> Shown:
        return wait_one(self, title, timeout)

    def click(self, notification: Shown, action: str = "default") -> None:
        """``dunstctl action`` on it, then closed as dunst's left click does (reason 2).
        Only the default action: dunst picks other actions through dmenu."""
        if action != "default":
            raise ValueError(f"action: dunst clicks only 'default', not {action!r}")
        index = [n.id for n in self.notifications()].index(notification.id)
        self.stack.action(index)
        self.stack.close()

    def dismiss(self, notification: Shown) -> None:
        self.stack.close()

    def stop(self) -> None:
        if self._own:
            self.stack.stop()

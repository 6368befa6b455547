"""clickHistory (issue 14 item 3): a history entry chosen in the tray is the click of
its notification, through the core's one click path (listeners, or kept for the next)."""

from __future__ import annotations

import itertools

from unipush_bridge.runtime import core
from unipush_bridge.runtime.core import Config, Core


def make() -> Core:
    counter = itertools.count()
    return Core(Config(app_command=("app",)), lambda: f"id{next(counter)}")


def test_history_click_goes_to_every_listener() -> None:
    """issue 14 item 3: same event as a click on the notification, entry marked clicked."""
    c = make()
    c.subscribed("L")
    data = {"title": "t", "content": "c", "payload": {"k": 1}}
    actions = c.history_clicked("m1", data)
    assert actions[0] == core.MarkClicked("m1")
    assert core.Send("L", core.click_event(data)) in actions
    assert c.counters["clicks"] == 1


def test_history_click_without_listener_is_kept_and_launches() -> None:
    """issue 14 item 3: no listener: kept for the next one, the app command launched."""
    c = make()
    data = {"payload": "x"}
    actions = c.history_clicked("m2", data)
    assert core.SavePendingClick(data) in actions
    assert core.Launch(("app",)) in actions
    assert c.pending_click == data

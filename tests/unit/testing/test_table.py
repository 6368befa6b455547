"""The capture server's notification table without a bus (issue 16 item 1)."""

from __future__ import annotations

import pytest

from unipush_bridge.testing.table import (
    ActionInvoked,
    CloseReason,
    NotificationClosed,
    NotificationTable,
    TableError,
)


def notify(table: NotificationTable, summary: str = "s", replaces_id: int = 0, **kw: object) -> int:
    args: dict[str, object] = {
        "app_name": "app",
        "replaces_id": replaces_id,
        "app_icon": "",
        "summary": summary,
        "body": "b",
        "actions": ["default", "Open"],
        "hints": {"urgency": 1},
        "expire_timeout": -1,
        **kw,
    }
    return table.notify(**args)  # type: ignore[arg-type]


def test_ids_start_at_one_and_never_repeat() -> None:
    """issue 16 item 1: id allocation (0 means "none" in the spec)."""
    table = NotificationTable()
    first, second = notify(table), notify(table)
    assert (first, second) == (1, 2)
    table.close_call(first)
    assert notify(table) == 3


def test_replaces_id_updates_in_place_only_while_open() -> None:
    """issue 16 item 1: replaces_id keeps the id of an open notification; a closed or
    unknown one gets a new id."""
    table = NotificationTable()
    nid = notify(table, "old")
    assert notify(table, "new", replaces_id=nid) == nid
    (shown,) = table.shown()
    assert (shown.summary, shown.replaced) == ("new", 1)
    table.close_call(nid)
    assert notify(table, "again", replaces_id=nid) == nid + 1
    assert notify(table, "unknown", replaces_id=99) == nid + 2


def test_click_is_action_invoked_then_closed_reason_2() -> None:
    """issue 16 item 1: a click as dunst does it (do_action, close_current)."""
    table = NotificationTable()
    nid = notify(table)
    assert table.click(nid) == [
        ActionInvoked(nid, "default"),
        NotificationClosed(nid, CloseReason.DISMISSED),
    ]
    assert table.get(nid).invoked == ["default"]
    with pytest.raises(TableError, match="is closed"):
        table.click(nid)


def test_close_reasons() -> None:
    """issue 16 item 1: expire is 1, dismiss 2, CloseNotification 3; closing twice or an
    unknown id emits nothing."""
    table = NotificationTable()
    a, b, c = notify(table), notify(table), notify(table)
    assert table.expire(a) == [NotificationClosed(a, 1)]
    assert table.dismiss(b) == [NotificationClosed(b, 2)]
    assert table.close_call(c) == [NotificationClosed(c, 3)]
    assert table.close_call(c) == []
    assert table.close_call(42) == []
    assert table.shown() == []
    with pytest.raises(TableError, match="reason: must be 1 to 4"):
        table.close(a, 5)


def test_refusals_name_the_field() -> None:
    """issue 16 item 1: clear errors naming the field and the rule."""
    table = NotificationTable()
    nid = notify(table, actions=[])
    with pytest.raises(TableError, match=r"action: 1 has no action 'default'"):
        table.click(nid)
    with pytest.raises(TableError, match=r"id: no notification 7"):
        table.dismiss(7)
    with pytest.raises(TableError, match="actions must be key/label pairs"):
        notify(table, actions=["default"])

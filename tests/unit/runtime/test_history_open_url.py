"""The history keeps a push's open_url (issue 14, brief item 2): choosing the entry in
the tray opens it through the core's one click path, as clicking its notification did;
a store from before the column reads and writes as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.unit.runtime.test_core import sim
from unipush_bridge.runtime import core
from unipush_bridge.runtime.store import Store

URL = "https://example.com/order/42"


def test_a_shown_push_is_remembered_with_its_open_url_and_its_history_click_opens_it() -> None:
    """issue 14 brief item 2: Remember carries the open_url; history_clicked with it is
    the notification click's OpenUrl (and no click event), without it a click event."""
    s = sim()
    s.push(s.record(1, open_url=URL))
    (remember,) = s.of(core.Remember)
    assert remember.open_url == URL
    s.listen("a")
    s.run(s.core.activated(s.shown[-1].ticket))
    assert s.of(core.OpenUrl) == [core.OpenUrl(URL)]
    actions = s.core.history_clicked(remember.entry, remember.data, remember.open_url)
    assert actions == [core.MarkClicked(remember.entry), core.OpenUrl(URL)]
    refused = s.core.history_clicked("e", {}, "file:///etc/passwd")
    assert not [a for a in refused if isinstance(a, core.OpenUrl)]
    assert [a for a in refused if isinstance(a, core.Warn)]
    plain = s.core.history_clicked("e2", {"payload": "p"})
    assert core.Send("a", core.click_event({"payload": "p"})) in plain


def test_a_push_held_back_by_quiet_hours_keeps_its_open_url() -> None:
    """issue 14 brief item 2: quiet hours record it unshown; chosen later in the tray,
    it opens its URL as its notification would have."""
    s = sim()
    s.run(s.core.set_quiet(True, 0.0))
    s.push(s.record(1, open_url=URL))
    assert s.shown == []
    (remember,) = s.of(core.Remember)
    assert remember.not_shown is not None and remember.open_url == URL


def test_store_round_trips_open_url_and_adds_the_column_to_an_old_history(
    tmp_path: Path,
) -> None:
    """issue 14 brief item 2: open_url in and out of the history; a history table from
    before the column (no open_url) gets it, its rows read open_url None."""
    path = tmp_path / "state.db"
    db = Store(path)
    db.remember_shown("a", "push", None, "t", "c", {"payload": 1}, keep=10, open_url=URL)
    db.remember_shown("b", "push", None, "t", "c", {"payload": 2}, keep=10)
    assert {e["id"]: e["open_url"] for e in db.history(10)} == {"a": URL, "b": None}
    db.close()
    with sqlite3.connect(path) as raw:  # as a store from before the column
        raw.execute("ALTER TABLE history DROP COLUMN open_url")
    old = Store(path)
    try:
        assert {e["id"]: e["open_url"] for e in old.history(10)} == {"a": None, "b": None}
        old.remember_shown("c", "push", None, "t", "c", {}, keep=10, open_url=URL)
        assert {e["id"]: e["open_url"] for e in old.history(10)}["c"] == URL
    finally:
        old.close()

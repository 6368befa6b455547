"""The tray's sans-I/O model (issue 14 item 3): state to icon, tooltip, menu layout,
menu events to commands; no bus."""

from __future__ import annotations

from unipush_bridge.tray import model
from unipush_bridge.tray.model import TrayState

ENTRY = {"id": "m1", "title": "Hi", "content": "there_you", "clicked": False, "shown_at": 10.0}


def test_state_to_icon() -> None:
    """issue 14 item 3: one icon per state; quiet beats the link, offline beats all."""
    base = TrayState(appid="A", online=True, link="connected")
    assert model.status(base) == "connected"
    assert model.status(base._replace(link="backing_off")) == "connecting"
    assert model.status(base._replace(quiet=True)) == "quiet"
    assert model.status(base._replace(online=False, quiet=True)) == "offline"
    icons = {
        model.item_properties(base._replace(**kw))["IconName"][1]
        for kw in ({}, {"link": "x"}, {"quiet": True}, {"online": False})
    }
    assert len(icons) == 4


def test_tooltip_has_appid_cid_and_unread() -> None:
    """issue 14 item 3: unread = not clicked and after the menu was last opened, at
    least quiet hours' count."""
    state = TrayState(appid="A", online=True, link="connected", cid="c" * 32, entries=(ENTRY,))
    tip = model.item_properties(state)["ToolTip"]
    assert tip[0] == "(sa(iiay)ss)"
    assert "appid A" in tip[1][3] and "c" * 32 in tip[1][3] and "1 unread" in tip[1][3]
    assert model.unread(state._replace(seen_at=11.0)) == 0
    assert model.unread(state._replace(seen_at=11.0, quiet_unread=3)) == 3
    assert model.unread(state._replace(entries=({**ENTRY, "clicked": True},))) == 0


def test_layout_and_commands() -> None:
    """issue 14 item 3: recent notifications first, then quiet, copy cid, history,
    quit; only "clicked" acts, and an id no longer listed does nothing."""
    state = TrayState(appid="A", online=True, cid="c" * 32, entries=(ENTRY,))
    root, props, children = model.layout(state)
    assert (root, props["children-display"][1]) == (0, "submenu")
    ids = [i for i, _ in children]
    m1 = model.entry_id(ENTRY, 0)
    assert m1 >= 100 and m1 == model.entry_id(ENTRY, 3)  # its id, not its place
    assert ids == [m1, 5, 1, 2, 3, 4]
    assert children[0][1]["label"][1] == "• Hi · there__you"
    assert model.command_for(state, m1, "clicked") == model.ClickEntry("m1")
    assert model.command_for(state, m1, "hovered") is None
    assert model.command_for(state, 101, "clicked") is None
    assert model.command_for(state, 1, "clicked") == model.SetQuiet(True)
    assert model.command_for(state._replace(quiet=True), 1, "clicked") == model.SetQuiet(False)
    assert model.command_for(state, 2, "clicked") == model.CopyCid("c" * 32)
    assert model.command_for(state, 3, "clicked") == model.OpenHistory()
    assert model.command_for(state, 4, "clicked") == model.Quit()
    offline = TrayState(appid="A")
    assert model.command_for(offline, 1, "clicked") is None
    assert [p["label"][1] for i, p in model.layout(offline)[2] if i == 6] == ["daemon not running"]
    assert model.item_props(state, [4], ["label"]) == [(4, {"label": ("s", "Quit tray")})]

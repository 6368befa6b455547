"""Quiet hours in the core (issue 14 item 4): schedule edges, a span over midnight,
the toggle, breakthrough of importance-4 channels, and the one summary when quiet
ends. No I/O: the test gives the core the local time (seconds after midnight)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from unipush_bridge.runtime import core
from unipush_bridge.runtime.core import (
    QUIET_REASON,
    Config,
    Core,
    in_quiet_hours,
    next_quiet_edge,
    parse_quiet_hours,
)
from unipush_bridge.wire.gateway import PushMessage

H = 3600.0
NIGHT = parse_quiet_hours("22:00-07:00")


def msg(n: int, **fields: Any) -> PushMessage:
    return PushMessage.parse({"title": f"t{n}", "content": f"c{n}", "payload": {"n": n}, **fields})


def make(**config: Any) -> Core:
    counter = itertools.count(1)
    return Core(Config(app_name="Desk", quiet_hours=NIGHT, **config), lambda: f"id{next(counter)}")


def of(actions: list[core.Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_parse_names_the_field_and_the_rule() -> None:
    """issue 14 item 4: the schedule's format."""
    assert parse_quiet_hours("22:00-07:00") == (22 * 60, 7 * 60)
    assert parse_quiet_hours("") is None and parse_quiet_hours(None) is None
    for bad in ("22-07", "24:00-07:00", "22:00-07:60", "22:00"):
        with pytest.raises(ValueError, match="quiet_hours must be HH:MM-HH:MM"):
            parse_quiet_hours(bad)
    with pytest.raises(ValueError, match="same time"):
        parse_quiet_hours("07:00-07:00")


@pytest.mark.parametrize(
    ("span", "at", "quiet"),
    [
        ("22:00-07:00", 21 * H + 3599, False),
        ("22:00-07:00", 22 * H, True),  # the start is in
        ("22:00-07:00", 23.99 * H, True),
        ("22:00-07:00", 0.0, True),  # over midnight
        ("22:00-07:00", 7 * H - 0.5, True),
        ("22:00-07:00", 7 * H, False),  # the end is out
        ("12:30-13:15", 12.5 * H, True),
        ("12:30-13:15", 13.25 * H, False),
        ("12:30-13:15", 0.0, False),
    ],
)
def test_schedule_edges(span: str, at: float, quiet: bool) -> None:
    """issue 14 item 4: schedule edges and a span over midnight."""
    parsed = parse_quiet_hours(span)
    assert parsed is not None
    assert in_quiet_hours(parsed, at) is quiet


def test_next_edge_is_the_nearer_of_start_and_end() -> None:
    """issue 14 item 4: what the driver's timer waits for."""
    assert NIGHT is not None
    assert next_quiet_edge(NIGHT, 21 * H) == H
    assert next_quiet_edge(NIGHT, 23 * H) == 8 * H  # to 07:00, over midnight
    assert next_quiet_edge(NIGHT, 22 * H) == 9 * H  # at an edge: the next one, never 0
    assert next_quiet_edge(NIGHT, 6.5 * H) == 0.5 * H


def test_quiet_pushes_are_recorded_counted_and_summed_up_once() -> None:
    """issue 14 item 4: while quiet a push is in the history with its click data and
    counted, not shown; when quiet ends ONE summary says how many arrived."""
    c = make()
    c.restore([], local=21 * H)
    assert c.quiet is False
    acts = c.recorded([("m1", msg(1))], 0, now=1.0, local=22 * H)
    assert of(acts, core.Show) == []
    (remember,) = of(acts, core.Remember)
    assert remember.not_shown == QUIET_REASON and remember.data["payload"] == {"n": 1}
    assert of(acts, core.Persist)[0].states == (("m1", core.State.DONE),)
    acts = c.recorded([("m2", msg(2)), ("m3", msg(3))], 0, now=2.0, local=3 * H)
    assert of(acts, core.Show) == [] and len(of(acts, core.Remember)) == 2
    assert c.quiet_status()["unread"] == 3 and c.counters["quiet"] == 3
    assert c.quiet_status() | {"unread": 0} == {
        "active": True,
        "mode": "auto",
        "schedule": "22:00-07:00",
        "breakthrough": False,
        "unread": 0,
    }
    assert c.tick(10.0, local=6.9 * H) == []  # still quiet
    acts = c.tick(11.0, local=7 * H)
    (summary,) = of(acts, core.Show)
    assert summary.notice.body == "3 notifications arrived during quiet hours"
    assert of(acts, core.SaveQuiet) == [core.SaveQuiet(None, 0)]
    assert c.tick(12.0, local=7.5 * H) == []  # once
    # The summary opens nothing and emits no click, even with a listener.
    c.subscribed("app")
    assert c.activated(summary.ticket) == []
    # After quiet: shown again.
    c.unsubscribed("app")
    acts = c.recorded([("m4", msg(4))], 0, now=20.0, local=8 * H)
    assert len(of(acts, core.Show)) == 1


def test_a_summary_no_server_took_is_shown_when_one_is_back() -> None:
    """The summary of quiet hours, when no server is there as they end, waits for one;
    if quiet hours began again meanwhile, its count joins the next summary instead."""
    c = make()
    c.restore([], local=21 * H)
    c.recorded([("m1", msg(1)), ("m2", msg(2))], 0, now=1.0, local=23 * H)
    (summary,) = of(c.tick(2.0, local=7 * H), core.Show)
    assert c.shown(summary.ticket, False, core.NO_SERVER) == [core.SaveQuiet(None, 2)]
    (again,) = of(c.server_back(3.0), core.Show)
    assert again.notice.body == "2 notifications arrived during quiet hours"
    assert again.ticket != summary.ticket and c.server_back(4.0) == []
    assert c.activated(again.ticket) == []  # still the quiet summary: no click

    c.recorded([("m3", msg(3))], 0, now=5.0, local=23 * H)
    (summary,) = of(c.tick(6.0, local=7 * H), core.Show)
    c.shown(summary.ticket, False, core.NO_SERVER)
    c.recorded([("m4", msg(4))], 0, now=7.0, local=23 * H)  # quiet again
    assert of(c.server_back(8.0), core.Show) == []
    assert c.quiet_status()["unread"] == 2
    (summary,) = of(c.tick(9.0, local=7 * H), core.Show)
    assert summary.notice.body == "2 notifications arrived during quiet hours"


def test_receive_events_flow_as_usual_while_quiet() -> None:
    """issue 14 item 4: a listener still gets receive events."""
    c = make()
    c.restore([], local=23 * H)
    c.subscribed("app")
    acts = c.recorded([("m1", msg(1))], 0, now=1.0, local=23 * H)
    assert [a.event["type"] for a in of(acts, core.Send)] == ["receive"]
    assert of(acts, core.Remember) == [] and c.quiet_unread == 0


def test_no_summary_when_nothing_arrived() -> None:
    """issue 14 item 4."""
    c = make()
    c.restore([], local=23 * H)
    assert c.tick(1.0, local=8 * H) == []


@pytest.mark.parametrize(("allowed", "shown"), [(True, 1), (False, 0)])
def test_importance_4_breaks_through_when_allowed(allowed: bool, shown: int) -> None:
    """issue 14 item 4: breakthrough of a channel with importance 4."""
    c = make(quiet_breakthrough=allowed)
    c.restore([], local=23 * H)
    c.set_push_channel({"channelId": "alarm", "channelDesc": "Alarm", "importance": 4})
    c.set_push_channel({"channelId": "news", "channelDesc": "News", "importance": 3})
    acts = c.recorded(
        [("m1", msg(1, channelId="alarm")), ("m2", msg(2, channelId="news"))], 0, 1.0, 23 * H
    )
    assert [s.notice.title for s in of(acts, core.Show)] == ["t1"][:shown]
    assert c.quiet_unread == 2 - shown
    local = c.create_push_message({"content": "x", "channelId": "alarm"}, 1.0, 23 * H)
    assert len(of(local, core.Show)) == shown


def test_toggle_overrides_the_schedule_and_ends_with_a_summary() -> None:
    """issue 14 item 4: the toggle on/off/auto; off ends quiet at once with a summary."""
    c = make()
    c.restore([], local=12 * H)
    acts = c.set_quiet(True, 12 * H)
    assert acts == [core.SaveQuiet(True, 0)] and c.quiet
    assert c.quiet_edge(12 * H) is None  # the schedule does not end it
    c.recorded([("m1", msg(1))], 0, 1.0, 12 * H)
    assert of(c.tick(2.0, local=13 * H), core.Show) == []  # still on
    acts = c.set_quiet(None, 14 * H)  # auto: 14:00 is outside 22-07
    assert len(of(acts, core.Show)) == 1 and not c.quiet
    c.set_quiet(False, 23 * H)  # off during the schedule: not quiet
    assert not c.quiet
    assert len(of(c.recorded([("m2", msg(2))], 0, 3.0, 23 * H), core.Show)) == 1
    assert c.quiet_status()["mode"] == "off"


def test_local_and_delayed_notifications_are_held_back_too() -> None:
    """issue 14 item 4: createPushMessage now, and a delayed one falling due."""
    c = make()
    c.restore([], local=23 * H)
    acts = c.create_push_message({"content": "now", "payload": {"k": 1}}, 100.0, 23 * H)
    (rem,) = of(acts, core.Remember)
    assert rem.source == "local" and rem.data["payload"] == {"k": 1}
    (sched,) = of(
        c.create_push_message({"content": "later", "delay": 5}, 100.0, 23 * H), core.Schedule
    )
    acts = c.tick(106.0, local=23 * H)
    assert of(acts, core.Show) == [] and len(of(acts, core.Remember)) == 1
    assert of(acts, core.Unschedule) == [core.Unschedule(sched.sched_id)]
    assert c.quiet_unread == 2


def test_restart_keeps_the_toggle_and_the_count() -> None:
    """issue 14 item 4: a restart (the store's toggle and count) after quiet ended
    meanwhile gives the summary at start."""
    c = make()
    acts = c.restore([], quiet=(None, 4), local=9 * H)
    (summary,) = of(acts, core.Show)
    assert summary.notice.body.startswith("4 notifications")
    c2 = make()
    c2.restore([], quiet=(True, 1), local=9 * H)
    assert c2.quiet and c2.quiet_unread == 1 and c2.quiet_status()["mode"] == "on"


def test_a_summary_no_server_took_comes_when_one_is_back() -> None:
    """The summary failed for want of a notification server and its count was gone:
    it goes back (on disk too) and the summary is shown when a server is back; a
    failure of that one notification (refused) is only logged."""
    from unipush_bridge.errors import NO_SERVER

    c = make()
    (summary,) = of(c.restore([], quiet=(None, 3), local=9 * H), core.Show)
    assert c.shown(summary.ticket, False, NO_SERVER) == [core.SaveQuiet(None, 3)]
    assert c.quiet_status()["unread"] == 3
    assert c.tick(1.0, local=9.5 * H) == []  # no server yet: nothing to try
    acts = c.server_back(2.0)
    (again,) = of(acts, core.Show)
    assert again.notice.body == "3 notifications arrived during quiet hours"
    assert of(acts, core.SaveQuiet) == [core.SaveQuiet(None, 0)]
    assert of(c.shown(again.ticket, False, "refused: bad hint"), core.SaveQuiet) == []
    assert c.server_back(3.0) == []  # once


def test_the_config_checks_quiet_hours(tmp_path: Any) -> None:
    """issue 14 item 4: the setting in the config file, named in its errors."""
    from unipush_bridge import config
    from unipush_bridge.config import DaemonSettings
    from unipush_bridge.errors import ConfigError

    f = tmp_path / "daemon.toml"
    f.write_text('quiet_hours = "22:00-07:00"\nquiet_breakthrough = true\n')
    opts = config.load(DaemonSettings, f, "daemon", {}).options()
    assert (opts.quiet_hours, opts.quiet_breakthrough) == ("22:00-07:00", True)
    f.write_text('quiet_hours = ""\n')
    assert config.load(DaemonSettings, f, "daemon", {}).options().quiet_hours is None
    for bad, why in (("22-07", "HH:MM-HH:MM"), ("07:00-07:00", "same time")):
        f.write_text(f'quiet_hours = "{bad}"\n')
        with pytest.raises(ConfigError, match=f"quiet_hours.*{why}|{why}.*quiet_hours"):
            config.load(DaemonSettings, f, "daemon", {})

"""core.py: uni-push's daemon-side rules as tables, with no I/O.

A small simulator plays the driver: it applies Persist actions to a dict that stands
for the store, records what listeners and the screen got, and feeds results back.
Crash tests cut a run at a point, keep only what was persisted, and start a new core
on it, as a daemon restarted after SIGKILL would.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from unipush_bridge.runtime import core
from unipush_bridge.runtime.core import (
    DURABLE,
    TRANSITIONS,
    Action,
    Config,
    Core,
    State,
    Step,
    step,
)
from unipush_bridge.runtime.localpush import Channel
from unipush_bridge.wire.gateway import PushMessage

APP = Config(
    app_name="Desk",
    app_command=("myapp", "--from-push"),
    flood_threshold=3,
    appid="__UNI__DESK001",
)


def msg(n: int, **fields: Any) -> PushMessage:
    return PushMessage.parse({"title": f"t{n}", "content": f"c{n}", "payload": {"n": n}, **fields})


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


@dataclass
class Sim:
    """Plays the driver. ``screen_ok`` decides the notification server's answers;
    ``holding`` which listeners hold what they are sent."""

    core: Core
    durable: dict[str, State] = field(default_factory=dict)
    #: Held ones on disk as waiting only for a notification server.
    waiting: set[str] = field(default_factory=set)
    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    push_ids: dict[str, list[str | None]] = field(default_factory=dict)
    shown: list[core.Show] = field(default_factory=list)
    done: list[Action] = field(default_factory=list)
    screen_ok: bool = True
    #: Why a show failed, when it did.
    reason: str = "no server"
    holding: set[str] = field(default_factory=set)
    auto_hold: bool = True
    waits: list[core.AwaitHold] = field(default_factory=list)
    pending_click: dict[str, Any] | None = None

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            self.done.append(action)
            match action:
                case core.Persist(states, waiting):
                    for msg_id, state in states:
                        assert state in DURABLE
                        self.durable[msg_id] = state
                        assert msg_id not in waiting or state is State.HELD
                        (self.waiting.add if msg_id in waiting else self.waiting.discard)(msg_id)
                case core.Send(listener, event, push_id):
                    self.got.setdefault(listener, []).append(event)
                    self.push_ids.setdefault(listener, []).append(push_id)
                case core.Show():
                    self.shown.append(action)
                    self.run(self.core.shown(action.ticket, self.screen_ok, self.reason))
                case core.AwaitHold():
                    self.waits.append(action)
                    if self.auto_hold:
                        self.release(action)
                case core.SavePendingClick(data):
                    self.pending_click = data
                case _:
                    pass

    def release(self, wait: core.AwaitHold) -> None:
        holders = [x for x in wait.listeners if x in self.holding]
        stuck = [x for x in wait.listeners if x not in self.holding]
        self.run(self.core.held(wait.token, holders, stuck))

    def push(self, *messages: tuple[str, PushMessage], now: float = 0.0) -> None:
        for msg_id, _ in messages:
            self.durable.setdefault(msg_id, State.PENDING)  # the record commit
        self.run(self.core.recorded(list(messages), 0, now))

    def listen(self, name: str) -> None:
        self.holding.add(name)
        self.run(self.core.subscribed(name))

    def types(self, name: str) -> list[str]:
        return [e["type"] for e in self.got.get(name, [])]

    def payloads(self, name: str) -> list[Any]:
        return [e["data"]["payload"] for e in self.got.get(name, [])]

    def of(self, kind: type) -> list[Any]:
        return [a for a in self.done if isinstance(a, kind)]

    def restart(self) -> Sim:
        """A new core on what was persisted, as after SIGKILL."""
        fresh = Sim(
            Core(self.core.config, ids()), durable=dict(self.durable), waiting=set(self.waiting)
        )
        bodies = {m: message for m, message in self.messages.items()}
        unfinished = [
            (m, bodies[m], s) for m, s in self.durable.items() if s in (State.PENDING, State.HELD)
        ]
        fresh.messages = bodies
        fresh.run(
            fresh.core.restore(unfinished, pending_click=self.pending_click, waiting=self.waiting)
        )
        return fresh

    messages: dict[str, PushMessage] = field(default_factory=dict)

    def record(self, n: int, **fields: Any) -> tuple[str, PushMessage]:
        m = msg(n, **fields)
        self.messages[f"m{n}"] = m
        return f"m{n}", m


def sim(**kwargs: Any) -> Sim:
    return Sim(Core(APP, ids()), **kwargs)


# -- the transition table -------------------------------------------------------------------


def test_every_state_reaches_done_or_held() -> None:
    """No state is a dead end: from each, some path leads to DONE."""
    reach = {State.DONE}
    for _ in State:
        reach |= {s for (s, _), t in TRANSITIONS.items() if t in reach}
    assert reach == set(State)


def test_done_is_terminal_and_a_wrong_step_is_a_bug() -> None:
    assert not [k for k in TRANSITIONS if k[0] is State.DONE]
    with pytest.raises(AssertionError, match="no transition from done"):
        step(State.DONE, Step.TO_LISTENERS)
    with pytest.raises(AssertionError):
        step(State.HELD, Step.SHOWN)


def test_only_pending_held_and_done_are_written() -> None:
    assert {State.PENDING, State.HELD, State.DONE} == DURABLE
    s = sim()
    s.listen("a")
    s.push(s.record(1))
    s.push(s.record(2, force_notification=True))
    s.screen_ok = False
    s.push(s.record(3, force_notification=True))
    for persist in s.of(core.Persist):
        assert all(state in DURABLE for _, state in persist.states)


# -- routing: where a push goes ----------------------------------------------------------------

ROUTES = [
    # listeners, force, server ok -> what each listener gets, notifications shown, end state
    (0, False, True, [], 1, State.DONE),
    (0, True, True, [], 1, State.DONE),
    (1, False, True, ["receive"], 0, State.DONE),
    (2, False, True, ["receive"], 0, State.DONE),
    (1, True, True, [], 1, State.DONE),
    (0, False, False, [], 1, State.HELD),  # no server, nobody listening: held
    (1, True, False, ["receive"], 1, State.DONE),  # forced but no server: receive instead
]


@pytest.mark.parametrize(("listeners", "force", "server", "each", "shows", "end"), ROUTES)
def test_routing(
    listeners: int, force: bool, server: bool, each: list[str], shows: int, end: State
) -> None:
    s = sim(screen_ok=server)
    names = [f"l{i}" for i in range(listeners)]
    for name in names:
        s.listen(name)
    s.push(s.record(1, force_notification=force))
    for name in names:
        assert s.types(name) == each
    assert len(s.shown) == shows
    assert s.durable["m1"] is end


def test_receive_events_carry_the_push_id_and_unis_data() -> None:
    s = sim()
    s.listen("a")
    s.push(s.record(1, extra_field="x"))
    assert s.push_ids["a"] == ["m1"]
    assert s.got["a"] == [
        {
            "type": "receive",
            "data": {
                "unipush_version": "2.0",
                "title": "t1",
                "content": "c1",
                "payload": {"n": 1},
                "extra_field": "x",
                "__UUID__": "m1",
                "appid": "__UNI__DESK001",
            },
        }
    ]


def test_pushes_to_a_listener_keep_their_order() -> None:
    s = sim()
    s.listen("a")
    s.push(*(s.record(n) for n in range(50)))
    assert s.payloads("a") == [{"n": n} for n in range(50)]


def test_channel_gives_urgency_and_sound() -> None:
    s = sim()
    s.core.channels["loud"] = Channel("loud", "Loud", sound_name="bell", importance=4)
    s.core.channels["quiet"] = Channel("quiet", "Quiet", importance=2)
    s.push(s.record(1, channelId="loud"), now=0)
    s.push(s.record(2, channelId="quiet"), now=20)
    s.push(s.record(3, channelId="unknown"), now=40)
    s.push(s.record(4, category="im"), now=60)
    notices = [show.notice for show in s.shown]
    assert [(n.urgency, n.sound) for n in notices] == [
        ("critical", "bell"),
        ("low", "system"),
        ("normal", "system"),
        ("normal", "system"),
    ]
    assert notices[3].category == "im"


# -- listeners that do not take what they are sent ---------------------------------------------


def test_a_stuck_listener_is_disconnected_and_only_its_copies_wait() -> None:
    s = sim()
    s.listen("good")
    s.listen("stuck")
    s.holding.discard("stuck")
    s.push(s.record(1))
    assert core.Disconnect("stuck") in s.done
    assert s.core.listeners == ["good"]
    assert s.durable["m1"] is State.DONE  # one listener holds it: done


def test_when_no_listener_holds_a_batch_it_is_held_for_the_next() -> None:
    s = sim()
    s.listen("stuck")
    s.holding.clear()
    s.push(s.record(1), s.record(2))
    assert s.durable == {"m1": State.HELD, "m2": State.HELD}
    assert s.core.listeners == []
    s.listen("next")
    assert s.payloads("next") == [{"n": 1}, {"n": 2}]
    assert s.durable == {"m1": State.DONE, "m2": State.DONE}


def test_a_listener_that_comes_while_a_batch_is_in_flight_takes_it_if_the_first_fails() -> None:
    s = sim(auto_hold=False)
    s.listen("first")
    s.push(s.record(1))
    s.holding.discard("first")
    s.listen("second")  # arrives while m1 waits on "first"
    s.release(s.waits[0])
    assert s.payloads("second") == [{"n": 1}]
    s.release(s.waits[-1])
    assert s.durable["m1"] is State.DONE


def test_a_failed_notification_while_listening_becomes_a_receive() -> None:
    s = sim(screen_ok=False)
    s.listen("a")
    s.push(s.record(1, force_notification=True))
    assert s.types("a") == ["receive"]
    assert s.durable["m1"] is State.DONE
    assert any("delivered as receive" in w.text for w in s.of(core.Warn))


# -- the crash-safety table: a cut at each point, then a restart --------------------------------


def test_crash_before_the_record_commit_leaves_nothing_to_replay() -> None:
    s = sim()
    restarted = s.restart()  # nothing was recorded; the gateway still has the message
    assert restarted.done == []
    restarted.push(restarted.record(1))  # the gateway sends it again after the hello
    assert len(restarted.shown) == 1


def test_crash_after_the_commit_before_the_ack_replays_pending_once() -> None:
    s = sim()
    s.durable["m1"] = State.PENDING  # committed; then the process died
    s.messages["m1"] = msg(1)
    restarted = s.restart()
    assert len(restarted.shown) == 1
    assert restarted.durable["m1"] is State.DONE


def test_crash_after_the_ack_before_handing_on_replays_to_a_listener() -> None:
    s = sim()
    s.durable["m1"] = State.PENDING
    s.messages["m1"] = msg(1)
    restarted = Sim(Core(APP, ids()), durable=dict(s.durable), messages=dict(s.messages))
    restarted.listen("a")  # a listener subscribed before the replay (after restore)
    restarted.run(restarted.core.restore([("m1", msg(1), State.PENDING)]))
    assert restarted.types("a") == ["receive"]
    assert restarted.push_ids["a"] == ["m1"]


def test_crash_after_a_notification_before_done_shows_it_again() -> None:
    """The documented window: one commit per batch."""
    s = sim()
    s.push(s.record(1))
    s.durable["m1"] = State.PENDING  # the done commit never happened
    assert len(s.shown) == 1
    restarted = s.restart()
    assert len(restarted.shown) == 1  # shown a second time


def test_crash_after_receive_before_done_replays_with_the_same_push_id() -> None:
    s = sim(auto_hold=False)
    s.listen("a")
    s.push(s.record(1))
    assert s.push_ids["a"] == ["m1"]
    assert s.durable["m1"] is State.PENDING  # sent, not yet held when the daemon died
    restarted = Sim(Core(APP, ids()), durable=dict(s.durable), messages=dict(s.messages))
    restarted.listen("a")  # the app's client reconnects and subscribes again
    restarted.run(restarted.core.restore([("m1", msg(1), State.PENDING)]))
    # Handed on again with the same push id: the client drops it, the app sees it once.
    assert restarted.push_ids["a"] == ["m1"]
    assert restarted.durable["m1"] is State.DONE


def test_crash_while_every_listener_is_stuck_replays() -> None:
    s = sim(auto_hold=False)
    s.listen("stuck")
    s.push(s.record(1))
    restarted = s.restart()  # killed while waiting for the hold
    assert restarted.durable["m1"] is State.DONE
    assert len(restarted.shown) == 1


def test_held_survives_a_restart_and_goes_to_the_next_listener() -> None:
    s = sim(screen_ok=False)
    s.push(s.record(1))
    assert s.durable["m1"] is State.HELD
    restarted = s.restart()
    assert restarted.shown == []  # held rows are not shown again
    restarted.listen("a")
    assert restarted.payloads("a") == [{"n": 1}]
    assert restarted.durable["m1"] is State.DONE


def test_a_transparent_message_is_not_shown_but_kept_for_the_next_listener() -> None:
    """uni-im leaves out title and content when it wants no notification: with no
    listener the daemon shows nothing (a blank banner helps nobody) and the next
    listener gets the receive; a forced one is still shown."""
    s = sim()
    s.push(s.record(1, title="", content=""))
    assert s.shown == []
    assert s.durable["m1"] is State.HELD
    s.push(s.record(2, title="", content="", force_notification=True))
    (forced,) = s.shown
    assert forced.notice.title == "Desk"  # the app's name, as a phone shows it
    restarted = s.restart()
    assert restarted.shown == []
    restarted.listen("a")
    assert restarted.payloads("a") == [{"n": 1}]
    assert restarted.durable["m1"] is State.DONE


def test_a_push_with_no_phone_makers_channel_is_held_or_missed_while_no_app_listens() -> None:
    """settings.strategy 3 (Getui's channel only): not shown while no app listens; the
    next listener gets it, or, online only, nobody (uni-im reloads from its database);
    an app that listens gets it as usual, and force_notification still shows it."""
    s = sim()
    s.push(s.record(1, offline="hold"), s.record(2, offline="drop"))
    assert s.shown == []
    assert s.durable == {"m1": State.HELD, "m2": State.DONE}
    assert s.core.counters["missed"] == 1
    s.push(s.record(3, offline="drop", force_notification=True))
    assert len(s.shown) == 1
    restarted = s.restart()
    restarted.listen("a")
    assert restarted.payloads("a") == [{"n": 1}]
    restarted.push(restarted.record(4, offline="drop"))
    assert restarted.payloads("a") == [{"n": 1}, {"n": 4}]


def test_a_held_push_expires_with_the_senders_ttl() -> None:
    """Getui keeps a message for a closed app only for its ttl: one held past its
    hold_until reaches no later listener, across a restart too, and is counted missed;
    one still within it, or from a gateway that gave no time, is handed on."""
    s = sim()
    s.push(
        s.record(1, offline="hold", hold_until=100.0),
        s.record(2, offline="hold", hold_until=300.0),
        s.record(3, offline="hold"),
    )
    assert s.core.next_deadline() == 100.0
    s.run(s.core.tick(99.0))
    assert s.durable["m1"] is State.HELD
    s.run(s.core.tick(100.0))
    assert s.durable["m1"] is State.DONE
    assert s.core.counters["missed"] == 1
    assert s.core.next_deadline() == 300.0
    assert [w.text for w in s.of(core.Warn)] == ["held pushes expired before an app listened"]
    restarted = s.restart()
    restarted.holding.add("a")
    restarted.run(restarted.core.subscribed("a", now=301.0))  # before the tick: not handed on
    assert restarted.payloads("a") == [{"n": 3}]
    assert restarted.durable == {"m1": State.DONE, "m2": State.DONE, "m3": State.DONE}
    assert restarted.core.next_deadline() is None


def test_a_push_being_received_does_not_expire_under_its_listener() -> None:
    """Only what waits expires: a push handed to a listener is its listener's."""
    s = sim(auto_hold=False)
    s.push(s.record(1, offline="hold", hold_until=100.0))
    s.listen("a")
    s.run(s.core.tick(500.0))
    s.release(s.waits[-1])
    assert s.durable["m1"] is State.DONE
    assert s.core.counters["missed"] == 0
    assert s.payloads("a") == [{"n": 1}]


def test_pending_click_survives_a_restart() -> None:
    s = sim()
    s.push(s.record(1))
    s.run(s.core.activated(s.shown[0].ticket))
    assert s.pending_click is not None
    restarted = s.restart()
    restarted.listen("a")
    assert restarted.types("a") == ["click"]
    assert restarted.pending_click is None


def test_a_kept_click_is_handed_over_with_the_same_id_in_every_run() -> None:
    """A kill after a listener took the kept click, before its clearing was written:
    the next run hands it over again, with the id it had, so the client drops it."""
    s = sim()
    s.push(s.record(1))
    s.run(s.core.activated(s.shown[0].ticket))
    (saved,) = [a for a in s.of(core.SavePendingClick) if a.data is not None]
    assert saved.click_id
    s.auto_hold = False
    s.listen("a")
    assert s.push_ids["a"] == [saved.click_id]
    fresh = Core(s.core.config, ids())
    fresh.restore([], pending_click=saved.data, pending_click_id=saved.click_id)
    (send,) = [a for a in fresh.subscribed("b") if isinstance(a, core.Send)]
    assert send.push_id == saved.click_id and send.event["type"] == "click"
    # Not taken by a listener that went away: the next one gets the same id too.
    (wait,) = s.waits
    s.run(s.core.held(wait.token, [], ["a"]))
    s.listen("c")
    assert s.push_ids["c"] == [saved.click_id]
    # One kept by a run from before ids were kept gets one at start.
    old = Core(s.core.config, ids())
    old.restore([], pending_click=saved.data)
    (send,) = [a for a in old.subscribed("d") if isinstance(a, core.Send)]
    assert send.push_id and send.push_id.startswith("click-")


# -- clicks ---------------------------------------------------------------------------------


def test_click_with_a_listener_is_a_click_event_with_the_same_data() -> None:
    s = sim()
    s.listen("a")
    s.push(s.record(1, force_notification=True))
    s.run(s.core.activated(s.shown[0].ticket))
    assert s.types("a") == ["click"]
    assert s.got["a"][0]["data"]["payload"] == {"n": 1}
    assert core.Receipt("m1", None, "click") in s.done
    assert core.MarkClicked(s.shown[0].ticket) in s.done


def test_receive_and_click_data_carry_the_message_uuid_and_appid() -> None:
    """What uni's App runtime puts in onPushMessage's data, beside title/content/payload:
    dcloudio/H5P.Android feature/aps/src/io/dcloud/feature/aps/PushMessage.java: toJSON()
    is ``{__UUID__, title, appid, content, payload}``; mUUID is made once per message
    (getMessageUUID) and rides in the notification's bundle (toBundle "uuid"), so
    NotificationReceiver.clickHandle finds the same message and its click has the same
    __UUID__; appid is the message's own, else the app's (defaultAppid).
    AbsPushService.createMessage makes createPushMessage's message the same way.
    dcloudio/uni-app packages/uni-push/src/plus.ts and
    packages/uni-api/src/service/plugin/push.ts: that JSON is onPushMessage's ``data``
    for both receive and click. Pages drop duplicates by ``res.data.__UUID__``.
    Here __UUID__ is the gateway's message id (stable, one per message) and appid the
    daemon's appId."""
    s = sim()
    s.listen("a")
    s.push(s.record(1))
    s.push(s.record(2, force_notification=True))
    s.run(s.core.activated(s.shown[0].ticket))
    received, clicked = s.got["a"]
    assert received["type"] == "receive"
    assert received["data"]["__UUID__"] == "m1"
    assert received["data"]["appid"] == "__UNI__DESK001"
    assert clicked["type"] == "click"
    assert clicked["data"]["__UUID__"] == "m2"
    assert clicked["data"]["appid"] == "__UNI__DESK001"


def test_a_replayed_push_has_the_same_uuid_after_a_restart() -> None:
    """The same message keeps its __UUID__ when a restarted daemon hands it on again,
    so a page that drops duplicates by ``res.data.__UUID__`` sees it once."""
    s = sim(auto_hold=False)
    s.listen("a")
    s.push(s.record(1))
    restarted = Sim(Core(APP, ids()), durable=dict(s.durable), messages=dict(s.messages))
    restarted.listen("a")
    restarted.run(restarted.core.restore([("m1", msg(1), State.PENDING)]))
    assert s.got["a"][0]["data"]["__UUID__"] == "m1"
    assert restarted.got["a"][0]["data"]["__UUID__"] == "m1"


def test_a_local_notifications_click_carries_a_uuid_and_the_appid() -> None:
    """AbsPushService.createMessage (dcloudio/H5P.Android feature/aps) builds a
    PushMessage: its click's data has __UUID__ and appid beside title/content/payload."""
    s = sim()
    s.listen("a")
    s.run(s.core.create_push_message({"content": "hi", "payload": {"k": 1}}, 0.0))
    s.run(s.core.activated(s.shown[0].ticket))
    data = s.got["a"][0]["data"]
    assert data["appid"] == "__UNI__DESK001"
    assert isinstance(data["__UUID__"], str) and data["__UUID__"]
    s.run(s.core.create_push_message({"content": "again"}, 0.0))
    s.run(s.core.activated(s.shown[1].ticket))
    assert s.got["a"][1]["data"]["__UUID__"] != data["__UUID__"]


def test_click_without_a_listener_is_kept_and_launches_the_app() -> None:
    s = sim()
    s.push(s.record(1))
    s.run(s.core.activated(s.shown[0].ticket))
    assert s.of(core.Launch) == [core.Launch(("myapp", "--from-push"))]
    assert s.pending_click is not None and s.pending_click["payload"] == {"n": 1}
    s.listen("a")
    assert s.types("a") == ["click"]


def test_latest_click_wins_for_the_next_listener() -> None:
    s = sim()
    s.push(s.record(1))
    s.push(s.record(2))
    for show in s.shown:
        s.run(s.core.activated(show.ticket))
    s.listen("a")
    assert s.payloads("a") == [{"n": 2}]


@pytest.mark.parametrize(
    ("url", "opened"),
    [
        ("https://example.com/a", True),
        ("http://example.com", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("file:///etc/passwd", False),
        ("javascript:alert(1)", False),
        ("myapp://open", False),
        ("ftp://example.com", False),
        (" https://x", False),
    ],
)
def test_open_url_opens_only_web_pages(url: str, opened: bool) -> None:
    """The gateway refuses other schemes too, but a hostile gateway must not be able
    to make the desktop open file:, javascript: or an app's own scheme."""
    s = sim()
    s.listen("a")
    s.push(s.record(1, open_url=url, force_notification=True))
    s.run(s.core.activated(s.shown[-1].ticket))
    assert (s.of(core.OpenUrl) == [core.OpenUrl(url)]) is opened
    assert bool(s.of(core.OpenUrl)) is opened
    assert s.types("a") == []  # an open_url click is not a click event


def test_a_click_on_an_unknown_ticket_does_nothing() -> None:
    assert sim().core.activated("nope") == []


# -- receipts and history ---------------------------------------------------------------------


def test_display_receipt_and_history_for_a_shown_push() -> None:
    s = sim()
    s.push(s.record(1, taskid="RASL_1"))
    assert core.Receipt("m1", "RASL_1", "display") in s.done
    (remember,) = s.of(core.Remember)
    assert (remember.source, remember.title, remember.content) == ("push", "t1", "c1")


def test_no_receipt_for_a_receive() -> None:
    s = sim()
    s.listen("a")
    s.push(s.record(1))
    assert s.of(core.Receipt) == []


# -- the flood ---------------------------------------------------------------------------------


def test_a_flood_is_summed_up_and_still_reaches_nobody_else() -> None:
    s = sim()
    s.push(*(s.record(n) for n in range(10)), now=100.0)
    assert len(s.shown) == 3  # the threshold
    assert s.core.counters["coalesced"] == 7
    assert all(s.durable[f"m{n}"] is State.HELD for n in range(3, 10))
    due = s.core.summary_due()
    assert due == 101.0
    s.run(s.core.tick(due))
    summary = s.shown[-1].notice
    assert summary.title == "Desk" and summary.body == "7 more messages: t9"
    assert s.core.summary_due() is None
    s.listen("a")  # the summed-up messages wait for the next listener
    assert s.payloads("a") == [{"n": n} for n in range(3, 10)]


def test_a_summary_click_acts_on_the_latest() -> None:
    s = sim()
    s.push(*(s.record(n) for n in range(5)), now=0.0)
    s.run(s.core.tick(10.0))
    s.run(s.core.activated(s.shown[-1].ticket))
    assert s.pending_click is not None and s.pending_click["payload"] == {"n": 4}


def test_a_flood_that_goes_on_is_summed_up_within_the_window() -> None:
    s = sim()
    for t in range(30):
        s.push(s.record(t), now=t * 0.5)
        s.run(s.core.tick(t * 0.5))
    summaries = [x for x in s.shown if x.notice.title == "Desk"]
    assert summaries, "a summary must come within flood_window even if the flood never stops"


def test_pushes_a_short_outage_held_are_shown_when_the_server_is_back_not_summed_up() -> None:
    """A show that failed takes no place in the flood's window: dunst gone for two
    seconds while three pushes came (threshold 3) shows the three when it is back, as
    it would have when they came, not "3 more messages" with the three kept held."""
    s = sim(screen_ok=False, reason="no notification server")
    s.push(*(s.record(n) for n in range(3)), now=100.0)
    assert len(s.shown) == 3 and all(s.durable[f"m{n}"] is State.HELD for n in range(3))
    assert s.core.summary_due() is None  # nothing was summed up during the outage
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert [x.notice.title for x in s.shown[3:]] == ["t0", "t1", "t2"]
    assert s.core.summary_due() is None and s.core.counters["coalesced"] == 0
    assert all(s.durable[f"m{n}"] is State.DONE for n in range(3))
    s.push(*(s.record(n) for n in range(3, 5)), now=103.0)  # the shown ones do count
    assert len(s.shown) == 6 and s.core.counters["coalesced"] == 2


def test_a_flood_summary_no_server_took_is_shown_when_one_is_back() -> None:
    s = sim(reason="no notification server")
    s.push(*(s.record(n) for n in range(5)), now=100.0)
    s.screen_ok = False
    s.run(s.core.tick(101.0))  # the summary falls due while dunst is gone
    assert len(s.shown) == 4
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert len(s.shown) == 4  # summed up again, shown when the flood settles
    s.run(s.core.tick(103.0))
    assert s.shown[-1].notice.body == "2 more messages: t4"
    s.run(s.core.activated(s.shown[-1].ticket))
    assert s.pending_click is not None and s.pending_click["payload"] == {"n": 4}


def test_a_flood_during_an_outage_comes_back_as_it_would_have_come() -> None:
    """Ten pushes in one batch while dunst is gone (threshold 3): once it is back, the
    three the flood let through, then the summary of the seven others (it failed too)."""
    s = sim(screen_ok=False, reason="no notification server")
    s.push(*(s.record(n) for n in range(10)), now=100.0)
    s.run(s.core.tick(101.0))
    assert len(s.shown) == 4 and all(not x.notice.body.startswith("7") for x in s.shown[:3])
    s.screen_ok = True
    s.run(s.core.server_back(120.0))
    s.run(s.core.tick(121.0))
    assert [x.notice.body for x in s.shown[4:]] == ["c0", "c1", "c2", "7 more messages: t9"]


def _dies_unacked(s: Sim, name: str) -> None:
    """A listener subscribes, gets what is held and dies before it acknowledges any."""
    s.auto_hold = False
    s.run(s.core.subscribed(name))
    wait = s.waits[-1]
    s.run(s.core.unsubscribed(name))
    s.run(s.core.held(wait.token, [], [], 0.0))
    s.auto_hold = True


def test_a_push_waiting_for_a_server_that_a_dead_listener_had_still_waits_for_it() -> None:
    """Held for want of a server; a listener gets it and dies without acknowledging it:
    no app had it, so the server shows it when it is back."""
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    _dies_unacked(s, "app")
    assert s.durable["m0"] is State.HELD
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert [x.notice.title for x in s.shown] == ["t0", "t0"] and s.durable["m0"] is State.DONE


def test_a_push_out_with_a_listener_when_the_server_came_back_is_shown_if_it_dies() -> None:
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    s.auto_hold = False
    s.run(s.core.subscribed("app"))
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert len(s.shown) == 1  # it is the listener's now
    s.run(s.core.unsubscribed("app"))
    s.run(s.core.held(s.waits[-1].token, [], [], 103.0))
    assert len(s.shown) == 2 and s.durable["m0"] is State.DONE


def test_a_push_a_listener_held_is_not_shown_when_the_server_is_back() -> None:
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    s.listen("app")
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert len(s.shown) == 1 and s.types("app") == ["receive"]


def test_a_forced_push_no_server_showed_is_shown_if_its_listener_dies_unacked() -> None:
    """force_notification with an app listening and no server: a receive instead; the
    app dies before it has it, so the banner comes when the server is back."""
    s = sim(screen_ok=False, reason="no notification server")
    s.auto_hold = False
    s.run(s.core.subscribed("app"))
    s.push(s.record(0, force_notification=True), now=100.0)
    s.run(s.core.unsubscribed("app"))
    s.run(s.core.held(s.waits[-1].token, [], [], 101.0))
    s.screen_ok = True
    s.run(s.core.server_back(102.0))
    assert len(s.shown) == 2 and s.durable["m0"] is State.DONE


def test_a_push_held_for_want_of_a_server_is_shown_after_a_restart_once() -> None:
    """The daemon restarted (SIGKILL: only what was persisted) while a push waited for a
    server: the next run shows it once a server is back, and no listener gets it after."""
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    assert s.durable["m0"] is State.HELD and s.waiting == {"m0"}
    fresh = s.restart()
    assert fresh.shown == []  # no server yet: it waits
    fresh.run(fresh.core.server_back(5.0))
    assert [x.notice.title for x in fresh.shown] == ["t0"]
    assert fresh.durable["m0"] is State.DONE and fresh.waiting == set()
    fresh.listen("app")
    assert fresh.types("app") == []
    again = fresh.restart()
    again.run(again.core.server_back(6.0))
    assert again.shown == []


def test_a_push_held_on_purpose_stays_held_for_a_listener_after_a_restart() -> None:
    """No phone maker's channel (strategy 3) and past a flood's threshold: held for a
    listener, not for a server, across a restart too."""
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), s.record(1, offline="hold"), now=100.0)
    s.screen_ok = True
    s.push(*(s.record(n) for n in range(2, 7)), now=101.0)  # threshold 3: 5 6 held
    assert s.waiting == {"m0"}
    fresh = s.restart()
    fresh.run(fresh.core.server_back(5.0))
    assert [x.notice.title for x in fresh.shown] == ["t0"]
    fresh.listen("app")
    assert fresh.payloads("app") == [{"n": 1}, {"n": 5}, {"n": 6}]


def test_a_push_waiting_for_a_server_that_a_listener_takes_after_a_restart_is_not_shown() -> None:
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    fresh = s.restart()
    fresh.listen("app")
    assert fresh.types("app") == ["receive"] and fresh.durable["m0"] is State.DONE
    fresh.run(fresh.core.server_back(5.0))
    assert fresh.shown == [] and fresh.restart().shown == []


def test_a_push_a_dead_listener_had_still_waits_for_a_server_after_a_restart() -> None:
    s = sim(screen_ok=False, reason="no notification server")
    s.push(s.record(0), now=100.0)
    fresh = s.restart()
    fresh.core._no_server = True  # the next run found no server either
    _dies_unacked(fresh, "app")
    again = fresh.restart()
    again.run(again.core.server_back(5.0))
    assert [x.notice.title for x in again.shown] == ["t0"]


TIMED_OUT = "notification server did not answer within 1 s"


def _times_out(s: Sim, actions: list[Action]) -> core.Show:
    """Carry out ``actions`` with every Show timing out (maybe shown); the last Show."""
    shows: list[core.Show] = []
    for action in actions:
        if isinstance(action, core.Show):
            shows.append(action)
            s.shown.append(action)
            s.run(s.core.shown(action.ticket, False, TIMED_OUT, maybe=True))
        else:
            s.run([action])
    return shows[-1]


def test_a_push_that_timed_out_and_was_shown_late_is_done_not_held() -> None:
    s = sim()
    s.record(0)
    show = _times_out(s, s.core.recorded([("m0", s.messages["m0"])], 0, 0.0))
    assert s.durable["m0"] is State.HELD and not s.of(core.Warn)
    s.run(s.core.shown_late(show.ticket, "n1"))
    assert s.durable["m0"] is State.DONE and s.core.counters["notified"] == 1
    assert [r.event for r in s.of(core.Receipt)] == ["display"]
    s.listen("app")
    assert s.types("app") == []  # not handed on a second time
    s.run(s.core.activated(show.ticket))  # its click still works
    assert s.types("app") == ["click"]


def test_a_push_a_listener_took_while_its_show_hung_is_closed_when_shown_late() -> None:
    s = sim()
    s.record(0)
    show = _times_out(s, s.core.recorded([("m0", s.messages["m0"])], 0, 0.0))
    s.listen("app")
    assert s.types("app") == ["receive"]
    s.run(s.core.shown_late(show.ticket, "n1"))
    assert s.of(core.Close) == [core.Close("n1")] and not s.of(core.Receipt)


def test_a_push_whose_show_hung_and_never_came_waits_for_a_server() -> None:
    s = sim()
    s.record(0)
    show = _times_out(s, s.core.recorded([("m0", s.messages["m0"])], 0, 0.0))
    s.run(s.core.shown_late(show.ticket, None))  # dunst killed while hung
    assert s.durable["m0"] is State.HELD
    s.run(s.core.server_back(5.0))
    assert len(s.shown) == 2 and s.durable["m0"] is State.DONE


def test_a_push_whose_show_hung_and_never_came_waits_for_a_server_after_a_restart() -> None:
    s = sim(screen_ok=False, reason="no notification server")
    s.record(0)
    show = _times_out(s, s.core.recorded([("m0", s.messages["m0"])], 0, 0.0))
    assert s.waiting == set()  # a timeout alone says nothing yet: it may come late
    s.run(s.core.shown_late(show.ticket, None))  # dunst killed while hung
    assert s.waiting == {"m0"}
    fresh = s.restart()
    fresh.run(fresh.core.server_back(5.0))
    assert [x.notice.title for x in fresh.shown] == ["t0"]


def test_a_create_push_message_that_timed_out_is_closed_when_shown_late() -> None:
    s = sim()
    show = _times_out(s, s.core.create_push_message({"content": "x"}, now=0))
    assert s.core.shown_late(show.ticket, "n1") == [core.Close("n1")]


def test_a_delayed_notification_shown_late_drops_its_retry() -> None:
    s = sim()
    s.run(s.core.create_push_message({"content": "x", "delay": 5}, now=0))
    show = _times_out(s, s.core.tick(5.0))
    assert len(s.core.scheduled) == 1  # the retry
    s.run(s.core.shown_late(show.ticket, "n1"))
    assert s.core.scheduled == {} and len(s.of(core.Unschedule)) == 2
    assert s.core.counters["shown_late"] == 1
    assert [r.not_shown for r in s.of(core.Remember)] == [TIMED_OUT, None]
    assert s.of(core.Remember)[0].entry == s.of(core.Remember)[1].entry


def test_a_quiet_summary_whose_show_hung_and_never_came_keeps_its_count() -> None:
    s = sim()
    s.run(s.core.set_quiet(True, 0.0))
    s.push(s.record(0))
    show = _times_out(s, s.core.set_quiet(False, 0.0))
    assert s.core.quiet_unread == 0
    s.run(s.core.shown_late(show.ticket, None))
    assert s.core.quiet_unread == 1


# -- local notifications ------------------------------------------------------------------------


def test_create_push_message_shows_with_defaults() -> None:
    s = sim()
    s.run(s.core.create_push_message({"content": "hi", "payload": {"k": 1}}, now=0))
    (show,) = s.shown
    assert show.notice == core.Notice(title="Desk", body="hi")
    (remember,) = s.of(core.Remember)
    assert remember.source == "local" and remember.data == {
        "title": "Desk",
        "content": "hi",
        "__UUID__": "id1",
        "appid": "__UNI__DESK001",
        "payload": {"k": 1},
    }


def test_create_push_message_on_an_unknown_channel_shows_on_the_default_one() -> None:
    """A receive's data handed back (createPushMessage(res.data)) may name a channel the
    sender uses on phones: shown all the same, with a warning in the log."""
    s = sim()
    s.run(s.core.create_push_message({"content": "x", "channelId": "nope"}, now=0))
    (show,) = s.shown
    assert show.notice.urgency == "normal"
    (warn,) = s.of(core.Warn)
    assert "no such channel" in warn.text and warn.detail == {"channelId": "nope"}


def test_a_local_click_carries_path_channel_and_category() -> None:
    """uni's PushMessage gives the click the page's path, and channelId and category
    when the page set them."""
    s = sim()
    s.run(s.core.set_push_channel({"channelId": "im", "channelDesc": "Chat"})[1])
    params = {"content": "x", "path": "/pages/chat?id=7", "channelId": "im", "category": "IM"}
    s.run(s.core.create_push_message({**params, "payload": {"k": 1}}, now=0))
    (remember,) = s.of(core.Remember)
    assert remember.data == {
        "title": "Desk",
        "content": "x",
        "__UUID__": "id1",
        "appid": "__UNI__DESK001",
        "payload": {"k": 1},
        "path": "/pages/chat?id=7",
        "channelId": "im",
        "category": "IM",
    }


def test_a_delayed_notification_fires_once_at_its_time() -> None:
    s = sim()
    s.run(s.core.create_push_message({"content": "later", "delay": 5}, now=100))
    (sched,) = s.of(core.Schedule)
    assert sched.due == 105 and sched.params["delay"] == 0
    assert s.core.tick(104) == []
    s.run(s.core.tick(105))
    assert [x.notice.body for x in s.shown] == ["later"]
    assert [type(a) for a in s.done[-3:]] == [core.Show, core.Remember, core.Unschedule]
    assert s.core.tick(200) == []


def test_a_scheduled_notification_not_shown_is_logged() -> None:
    """It is logged, recorded as not shown, and tried again (issue 12 item 11)."""
    s = sim(screen_ok=False)
    s.core.scheduled["x"] = ({"content": "later"}, 1.0)
    s.run(s.core.tick(2.0))
    assert [w.text for w in s.of(core.Warn)] == ["scheduled notification not shown; trying again"]
    assert core.Unschedule("x") in s.done
    assert [r.not_shown for r in s.of(core.Remember)] == ["no server"]


def test_cover_and_when_are_passed_on() -> None:
    s = sim()
    s.run(s.core.create_push_message({"content": "x", "cover": True, "when": 5000}, now=0))
    assert s.shown[0].notice.cover is True
    assert s.of(core.Remember)[0].data["when"] == 5000


# -- channels -----------------------------------------------------------------------------------


def test_channels_never_change_once_created() -> None:
    c = Core(APP, ids())
    created, actions = c.set_push_channel({"channelId": "a", "channelDesc": "A", "importance": 4})
    assert created and isinstance(actions[0], core.SaveChannel)
    created, actions = c.set_push_channel({"channelId": "a", "channelDesc": "B", "importance": 2})
    assert not created and actions == []
    assert c.channel("a").importance == 4
    assert [ch.channel_id for ch in c.all_channels()] == ["DcloudChannelID", "a"]

"""Held pushes: handed to a new listener in rounds, and bounded in memory.

A connection is cut past 4 MiB of unread output, so a long absence's held pushes go
over in rounds of about HANDOVER_BYTES, each once a listener holds the last; pushes
that come meanwhile wait behind them. Past ``max_held_bytes`` of held pushes the core
says ``held_full`` and the driver's ``hand_on`` waits (the link takes nothing more).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.unit.runtime.test_core import Sim, ids, msg
from tests.unit.runtime.test_driver import App, Screen, deliver, make, settle
from unipush_bridge.runtime import core
from unipush_bridge.runtime.core import HANDOVER_BYTES, HANDOVER_EVENTS, Config, Core, State
from unipush_bridge.runtime.store import Store

BIG = 300_000  # content per push: three fit a round, four do not


def held_sim(**config: Any) -> Sim:
    return Sim(Core(Config(app_name="Desk", **config), ids()), auto_hold=False)


def hold(s: Sim, *ns: int, content: int = BIG) -> None:
    """Pushes that nobody listens for, and that show nothing: held (``pad``, a field
    the sender set, rides along in the event and makes it ``content`` bytes larger)."""
    s.push(*(s.record(n, pad="x" * content, offline="hold") for n in ns))


def rounds(s: Sim) -> list[list[str]]:
    return [list(w.push_ids) for w in s.waits]


def test_held_pushes_go_to_a_new_listener_in_rounds_each_once_a_listener_holds_the_last() -> None:
    s = held_sim()
    hold(s, *range(10))
    s.listen("app")
    assert rounds(s) == [["m0", "m1", "m2"]]  # 900 KB: a fourth would pass HANDOVER_BYTES
    for _ in range(10):
        s.release(s.waits[-1])  # the listener holds the round: the next one goes
        if not s.core.entries:
            break
    assert rounds(s) == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6", "m7", "m8"], ["m9"]]
    assert s.payloads("app") == [{"n": n} for n in range(10)]
    assert s.durable == {f"m{n}": State.DONE for n in range(10)}
    assert s.core.held_ledger.count == 0 and s.core.held_ledger.bytes == 0


def test_a_round_is_at_most_handover_events_long() -> None:
    s = held_sim()
    hold(s, *range(HANDOVER_EVENTS + 20), content=10)
    s.listen("app")
    assert len(s.waits[0].push_ids) == HANDOVER_EVENTS
    s.release(s.waits[0])
    assert len(s.waits[1].push_ids) == 20


def test_one_push_larger_than_a_round_still_goes() -> None:
    s = held_sim()
    hold(s, 1, content=HANDOVER_BYTES * 2)
    s.listen("app")
    assert rounds(s) == [["m1"]]


def test_a_push_that_comes_during_the_handover_waits_behind_the_held_ones() -> None:
    s = held_sim()
    hold(s, *range(6))
    s.listen("app")
    s.push(s.record(99))  # while the first round is out
    assert s.payloads("app") == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert s.durable["m99"] is State.PENDING  # on disk as recorded: a restart replays it
    s.release(s.waits[-1])
    s.release(s.waits[-1])
    assert s.payloads("app") == [{"n": n} for n in [*range(6), 99]]
    s.release(s.waits[-1])
    assert s.durable["m99"] is State.DONE
    s.push(s.record(100))  # nothing held any more: straight out
    assert s.payloads("app")[-1] == {"n": 100}


def test_a_round_the_listener_did_not_hold_is_held_again_and_the_next_one_starts_over() -> None:
    s = held_sim()
    hold(s, *range(6))
    s.listen("first")
    s.holding.discard("first")
    s.release(s.waits[-1])  # stuck: disconnected, its round held again
    assert s.core.listeners == []
    assert s.core.count(State.HELD) == 6
    s.listen("second")
    while s.core.count(State.HELD) or s.core.count(State.RECEIVING):
        s.release(s.waits[-1])
    assert s.payloads("second") == [{"n": n} for n in range(6)]
    assert s.payloads("first") == [{"n": n} for n in range(3)]  # nothing twice to it


def test_held_full_past_the_bound_and_not_once_a_listener_took_them() -> None:
    s = held_sim(max_held_bytes=3 * (BIG + core.ENTRY_OVERHEAD))
    hold(s, 1, 2)
    assert not s.core.held_full()
    hold(s, 3)
    assert s.core.held_full()
    s.listen("app")
    assert not s.core.held_full()  # out with the listener: its memory is the round's
    s.release(s.waits[-1])
    assert s.core.held_ledger.count == 0 and not s.core.held_full()


def test_held_pushes_whose_ttl_ended_leave_room() -> None:
    s = held_sim(max_held_bytes=BIG)
    s.push(s.record(1, pad="x" * BIG, offline="hold", hold_until=100.0))
    assert s.core.held_full()
    s.run(s.core.tick(101.0))
    assert not s.core.held_full() and s.core.held_ledger.count == 0


async def test_hand_on_waits_at_the_bound_until_a_listener_takes_the_held_pushes(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.sqlite3")
    store.save_identity("embedded", "__UNI__TEST", "c" * 32, 0)
    screen = Screen()
    screen.available = False
    d = make(store, screen, max_held_bytes=2 * (1000 + core.ENTRY_OVERHEAD))
    await d.start()
    try:
        body = {"content": "x" * 1000, "offline": "hold"}
        await deliver(d, (1, "m1", msg(1, **body)))
        link = asyncio.ensure_future(deliver(d, (2, "m2", msg(2, **body))))
        await settle()
        assert not link.done(), "the link went on past the bound"
        assert d.inbox()["held_full"]
        app = App()
        await d.subscribe(app)
        await asyncio.wait_for(link, 2)
        await settle()
        assert app.payloads() == [{"n": 1}, {"n": 2}]
        assert not d.inbox()["held_full"]
    finally:
        await d.stop(0.5)


def out(s: Sim) -> list[core.AwaitHold]:
    """The waits the core has not been told about yet, oldest first."""
    return [w for w in s.waits if w.token in s.core._holds]


def drain(s: Sim) -> None:
    """Every listener in ``holding`` holds what it is sent, until nothing is out."""
    for _ in range(100):
        if not out(s):
            return
        s.release(out(s)[0])
    raise AssertionError("rounds never ended")


def test_a_forced_push_the_screen_refused_waits_behind_the_held_ones() -> None:
    """It goes to the listener as receive, after the older held ones (it went before
    the next round, so the listener got it out of order)."""
    s = held_sim()
    hold(s, *range(6))
    s.listen("app")
    s.screen_ok, s.reason = False, "no notification server"
    s.push(s.record(99, force_notification=True))
    drain(s)
    assert s.payloads("app") == [{"n": n} for n in [*range(6), 99]]
    assert s.durable == {**{f"m{n}": State.DONE for n in range(6)}, "m99": State.DONE}
    assert s.core.held_ledger.count == 0


def test_pushes_held_for_a_server_stay_in_rounds_when_it_is_back_with_a_listener() -> None:
    """A listener takes them as receive events in rounds; the server coming back in
    between handed all the rest at once (past a connection's output cap, a long
    outage's would cut the listener)."""
    s = held_sim()
    s.screen_ok, s.reason = False, "no notification server"
    s.push(*(s.record(n, pad="x" * BIG) for n in range(10)))  # no server, nobody: held
    assert s.waiting == {f"m{n}" for n in range(10)}
    s.screen_ok = True
    s.listen("app")
    shows = len(s.shown)
    s.run(s.core.server_back(100.0))
    for _ in range(10):
        sent = {i for w in out(s) for i in w.push_ids}
        assert sum(s.core.entries[i].size for i in sent) <= HANDOVER_BYTES
        if not out(s):
            break
        s.release(out(s)[0])
    assert s.payloads("app") == [{"n": n} for n in range(10)]
    assert len(s.shown) == shows  # the listener has them: not on the screen too
    assert s.durable == {f"m{n}": State.DONE for n in range(10)}


def test_held_for_a_server_then_the_listener_leaves_mid_rounds_they_are_shown() -> None:
    s = held_sim()
    s.screen_ok, s.reason = False, "no notification server"
    s.push(*(s.record(n, pad="x" * BIG) for n in range(6)))
    s.screen_ok = True
    s.listen("app")
    s.run(s.core.server_back(100.0))
    s.holding.discard("app")
    s.run(s.core.unsubscribed("app"))
    s.release(out(s)[0])  # its round: not held
    assert [a.notice.body for a in s.shown[-6:]] == [f"c{n}" for n in range(6)]
    assert s.durable == {f"m{n}": State.DONE for n in range(6)}
    assert s.payloads("app") == [{"n": n} for n in range(3)]


def test_a_listener_that_subscribes_while_a_stuck_one_has_the_round_gets_it_at_once() -> None:
    """It got nothing until the stuck one's hold timeout (30 s), and the pushes that
    came meanwhile waited behind that round too."""
    s = held_sim()
    hold(s, *range(6))
    s.listen("stuck")
    s.holding.discard("stuck")
    s.listen("good")
    assert s.payloads("good") == [{"n": n} for n in range(3)]  # the round out, at once
    s.push(s.record(99))
    # "good" holds its copy of the round: the next one goes, to both.
    good_wait = next(w for w in out(s) if w.listeners == ("good",))
    s.run(s.core.held(good_wait.token, ["good"], []))
    assert s.payloads("good") == [{"n": n} for n in [*range(6), 99]]
    s.run(s.core.held(out(s)[0].token, [], ["stuck"]))  # the stuck one's timeout
    drain(s)
    assert s.payloads("good") == [{"n": n} for n in [*range(6), 99]]
    assert s.core.listeners == ["good"] and not s.core.entries
    assert s.durable == {**{f"m{n}": State.DONE for n in range(6)}, "m99": State.DONE}


def test_a_round_two_listeners_have_is_held_again_only_once_neither_holds_it() -> None:
    s = held_sim()
    hold(s, *range(6))
    s.listen("first")
    s.listen("second")
    s.holding.clear()
    first, second = out(s)
    s.run(s.core.unsubscribed("second"))  # it went away
    s.run(s.core.held(second.token, [], []))
    assert s.core.count(State.RECEIVING) == 3  # still out with "first"
    assert not out(s)[1:]  # and no round out to anybody else meanwhile
    s.run(s.core.held(first.token, [], ["first"]))
    assert s.core.count(State.HELD) == 6 and s.core.held_ledger.count == 6
    s.listen("third")
    drain(s)
    assert s.payloads("third") == [{"n": n} for n in range(6)]
    assert s.payloads("second") == [{"n": n} for n in range(3)]


def test_a_listener_that_came_during_the_last_round_gets_it_before_newer_pushes() -> None:
    """The first leaves without holding its round: the second had the newer push
    already, and got the round's older ones after it."""
    s = held_sim()
    hold(s, 1, 2)
    s.listen("first")
    s.holding.discard("first")
    s.listen("second")
    s.push(s.record(99))
    s.run(s.core.unsubscribed("first"))
    drain(s)
    assert s.payloads("second") == [{"n": 1}, {"n": 2}, {"n": 99}]

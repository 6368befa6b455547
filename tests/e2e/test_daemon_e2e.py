"""The whole path on a real notification server: push -> dunst -> click -> listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc, Listener, Proc, cli, wait_for, wait_listeners


@pytest.fixture
def stack(tmp_path: Path, dunst: DunstStack, procs: list[Proc]) -> tuple[GatewayProc, DaemonProc]:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=dunst.env).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return gateway, daemon


def listen(
    tmp_path: Path, procs: list[Proc], daemon: DaemonProc, dunst: DunstStack, name: str = "listener"
) -> Listener:
    before = daemon.status()["listeners"]
    listener = Listener(daemon.socket, tmp_path / f"{name}.log", dunst.env).start()
    procs.append(listener)
    wait_listeners(daemon, before + 1)
    return listener


def test_push_without_listener_becomes_a_notification_and_its_click_waits(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], stack: tuple[GatewayProc, DaemonProc]
) -> None:
    gateway, daemon = stack
    payload = {"order": 42, "path": "/pages/order?id=42"}
    status, answer = gateway.send(
        {
            "push_clientid": daemon.cid(),
            "title": "Order shipped",
            "content": "Your order #42 is on its way",
            "payload": payload,
        }
    )
    assert status == 200, answer
    (seen,) = dunst.wait_seen(1)
    assert seen["summary"] == "Order shipped"
    assert seen["body"] == "Your order #42 is on its way"
    assert seen["appname"] == "unipush-bridge"
    assert dunst.count_displayed() == 1

    dunst.action(0)
    wait_for(lambda: daemon.status()["counters"]["clicks"] == 1, 10, "the click")
    listener = listen(tmp_path, procs, daemon, dunst)
    (event,) = listener.wait_events(1)
    assert event["type"] == "click"
    assert event["data"]["payload"] == payload
    assert event["data"]["title"] == "Order shipped"
    assert event["data"]["unipush_version"] == "2.0"


def test_online_push_is_a_receive_and_shows_nothing(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], stack: tuple[GatewayProc, DaemonProc]
) -> None:
    gateway, daemon = stack
    listener = listen(tmp_path, procs, daemon, dunst)
    gateway.send({"push_clientid": daemon.cid(), "title": "t", "content": "c", "payload": "p"})
    (event,) = listener.wait_events(1)
    assert event["type"] == "receive"
    assert dunst.seen() == []
    assert dunst.count_displayed() == 0


def test_force_notification_skips_receive_and_clicks_to_the_listener(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], stack: tuple[GatewayProc, DaemonProc]
) -> None:
    gateway, daemon = stack
    listener = listen(tmp_path, procs, daemon, dunst)
    gateway.send(
        {
            "push_clientid": daemon.cid(),
            "title": "Forced",
            "content": "shown anyway",
            "payload": {"k": "v"},
            "force_notification": True,
        }
    )
    (seen,) = dunst.wait_seen(1)
    assert (seen["summary"], seen["body"]) == ("Forced", "shown anyway")
    assert listener.events() == []
    dunst.action(0)
    (event,) = listener.wait_events(1)
    assert event["type"] == "click"
    assert event["data"]["payload"] == {"k": "v"}
    assert event["data"]["force_notification"] is True


def test_create_push_message_shows_and_clicks_back_with_the_payload(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], stack: tuple[GatewayProc, DaemonProc]
) -> None:
    _, daemon = stack
    listener = listen(tmp_path, procs, daemon, dunst)
    res = cli(
        "notify",
        "--socket",
        str(daemon.socket),
        "--content",
        "local body",
        "--payload",
        '{"local": true}',
        env=dunst.env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "createPushMessage:ok"
    (seen,) = dunst.wait_seen(1)
    # No title given: uni uses the app name.
    assert (seen["summary"], seen["body"]) == ("unipush-bridge", "local body")
    dunst.action(0)
    (event,) = listener.wait_events(1)
    assert event == {
        "type": "click",
        "data": {"title": "unipush-bridge", "content": "local body", "payload": {"local": True}},
    }


def test_markup_in_a_push_reaches_dunst_escaped(
    dunst: DunstStack, stack: tuple[GatewayProc, DaemonProc]
) -> None:
    gateway, daemon = stack
    gateway.send(
        {
            "push_clientid": daemon.cid(),
            "title": "t",
            "content": "<b>bold</b> & <i>x</i>",
            "payload": "p",
        }
    )
    dunst.wait_seen(1)
    log = dunst.monitor_log()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;x&lt;/i&gt;" in log
    assert "<b>bold</b>" not in log


def test_a_flood_is_summed_up_and_nothing_is_lost(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc]
) -> None:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    env = {**dunst.env, "UNIPUSH_BRIDGE_FLOOD_THRESHOLD": "3", "UNIPUSH_BRIDGE_FLOOD_WINDOW": "30"}
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=env).start()
    procs.append(daemon)
    cid = daemon.cid()
    for i in range(8):
        gateway.send({"push_clientid": cid, "title": f"m{i}", "content": "c", "payload": {"n": i}})
    # three messages, then one summary (dunst's rule script may log them out of order)
    seen = sorted(dunst.wait_seen(4, timeout=10), key=lambda s: int(s["id"]))
    assert [s["summary"] for s in seen[:3]] == ["m0", "m1", "m2"]
    assert seen[3]["summary"] == "unipush-bridge"
    assert seen[3]["body"] == "5 more messages: m7"
    assert dunst.count_displayed() == 4
    # The five summed-up messages wait for the next app that listens.
    listener = listen(tmp_path, procs, daemon, dunst)
    events = listener.wait_events(5)
    assert [e["data"]["payload"]["n"] for e in events] == [3, 4, 5, 6, 7]


def test_resume_from_suspend_reconnects_at_once(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc]
) -> None:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    # logind speaks on the system bus; the private session bus stands in for it here.
    env = {**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "session"}
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env=env).start()
    procs.append(daemon)
    connected_since = daemon.status()["connection"]["connected_since"]
    dunst.run(
        [
            "dbus-send",
            "--session",
            "--type=signal",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager.PrepareForSleep",
            "boolean:true",
        ]
    )
    dunst.run(
        [
            "dbus-send",
            "--session",
            "--type=signal",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager.PrepareForSleep",
            "boolean:false",
        ]
    )
    wait_for(
        lambda: any(e.get("reason") == "resumed from suspend" for e in daemon.logs()),
        10,
        "the resume to be noticed",
    )
    status = wait_for(
        lambda: (
            (s := daemon.status())["connection"]["connected_since"] != connected_since
            and s["connection"]["state"] == "connected"
            and s
        ),
        10,
        "a new connection",
    )
    assert status["connection"]["attempts"] == 0  # no backoff on a wake


def test_display_and_click_receipts_reach_the_gateways_report(
    dunst: DunstStack, stack: tuple[GatewayProc, DaemonProc]
) -> None:
    gateway, daemon = stack
    status, answer = gateway.send(
        {"push_clientid": daemon.cid(), "title": "Report me", "content": "c", "payload": "p"}
    )
    assert status == 200
    (taskid,) = answer["data"]
    dunst.wait_seen(1)
    dunst.action(0)

    def counters() -> dict[str, int] | None:
        code, report = gateway.send({"taskid": taskid}, method="getReport")
        total: dict[str, int] = report["data"][taskid]["total"]
        return total if code == 200 and total["click_num"] == 1 else None

    total = wait_for(counters, 10, "the click receipt")
    assert total == {
        "msg_num": 1,
        "target_num": 1,
        "receive_num": 1,
        "display_num": 1,
        "click_num": 1,
    }

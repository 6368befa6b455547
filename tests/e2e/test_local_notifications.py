"""createPushMessage's options, channels, clicks and history, proven on dunst."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.notifstack import DunstStack
from tests.procs import DaemonProc, GatewayProc, Listener, Proc, cli, wait_for, wait_listeners

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "static").mkdir(parents=True)
    (root / "static" / "logo.png").write_bytes(PNG)
    (root / "app-icon.png").write_bytes(PNG)
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "ding.oga").write_bytes(b"OggS")
    return root


def start(
    tmp_path: Path, procs: list[Proc], dunst: DunstStack, app_root: Path, **env: str
) -> DaemonProc:
    gateway_dir = tmp_path / "gw"
    if not any(isinstance(p, GatewayProc) for p in procs):
        procs.append(GatewayProc(gateway_dir, env=dunst.env).start())
    gateway = next(p for p in procs if isinstance(p, GatewayProc))
    settings = {
        "UNIPUSH_BRIDGE_APP_ROOT": str(app_root),
        "UNIPUSH_BRIDGE_APP_ICON": str(app_root / "app-icon.png"),
        "UNIPUSH_BRIDGE_SOUNDS_DIR": str(tmp_path / "sounds"),
        "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
        **env,
    }
    daemon = DaemonProc(tmp_path / "daemon", gateway.ws_url, env={**dunst.env, **settings})
    procs.append(daemon.start())
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return daemon


def notify(daemon: DaemonProc, dunst: DunstStack, *args: str) -> str:
    res = cli("notify", "--socket", str(daemon.socket), *args, env=dunst.env)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_icon_forms_and_fallback(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    logo = app_root / "static" / "logo.png"
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.png").write_bytes(PNG)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(served), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        forms = [
            "static/logo.png",
            "_www/static/logo.png",
            str(logo),
            logo.as_uri(),
            f"{base}/remote.png",
            f"{base}/missing.png",
            "static/missing.png",
        ]
        for i, icon in enumerate(forms):
            notify(daemon, dunst, "--content", f"icon {i}", "--icon", icon)
        seen = sorted(dunst.wait_seen(len(forms)), key=lambda s: int(s["id"]))
    finally:
        server.shutdown()
    icons = [s["icon"] for s in seen]
    assert icons[:4] == [str(logo)] * 4
    cached = Path(icons[4])
    assert cached.is_relative_to(tmp_path / "daemon" / "icons") and cached.read_bytes() == PNG
    # a missing remote or local icon falls back to the app icon
    assert icons[5:] == [str(app_root / "app-icon.png")] * 2


def test_channel_importance_sound_and_category(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    sock = ["--socket", str(daemon.socket)]
    ok = cli(
        "channel",
        "set",
        *sock,
        "--channel-id",
        "urgent",
        "--channel-desc",
        "Urgent",
        "--importance",
        "4",
        "--sound-name",
        "ding",
        env=dunst.env,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "setPushChannel:ok", ok.stderr
    cli(
        "channel",
        "set",
        *sock,
        "--channel-id",
        "quiet",
        "--channel-desc",
        "Quiet",
        "--importance",
        "2",
        env=dunst.env,
    )
    # never changed once created
    cli(
        "channel",
        "set",
        *sock,
        "--channel-id",
        "quiet",
        "--channel-desc",
        "Loud",
        "--importance",
        "4",
        env=dunst.env,
    )
    listed = json.loads(cli("channel", "list", *sock, "--json", env=dunst.env).stdout)
    assert [(c["channelId"], c["channelDesc"], c["importance"]) for c in listed] == [
        ("DcloudChannelID", "Default", 3),
        ("urgent", "Urgent", 4),
        ("quiet", "Quiet", 2),
    ]
    notify(daemon, dunst, "--content", "u", "--channel-id", "urgent", "--category", "im")
    notify(daemon, dunst, "--content", "q", "--channel-id", "quiet", "--sound", "none")
    notify(daemon, dunst, "--content", "d")
    seen = {s["body"]: s for s in dunst.wait_seen(3)}
    assert seen["u"]["urgency"] == "CRITICAL" and seen["u"]["category"] == "im"
    assert seen["q"]["urgency"] == "LOW" and seen["q"]["category"] == ""
    assert seen["d"]["urgency"] == "NORMAL"
    monitor = dunst.monitor_log()
    assert (tmp_path / "sounds" / "ding.oga").as_uri() in monitor  # the channel's sound file
    # A channel the app never made (a receive's data handed back, from a sender that
    # names its phone channels): shown on the default channel, as uni does not fail it.
    missing = cli("notify", *sock, "--content", "x", "--channel-id", "nope", env=dunst.env)
    assert missing.returncode == 0, missing.stderr
    seen = {s["body"]: s for s in dunst.wait_seen(4)}
    assert seen["x"]["urgency"] == "NORMAL"


def test_cover_replaces_in_place(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    notify(daemon, dunst, "--content", "step 1 of 3", "--cover")
    (first,) = dunst.wait_seen(1)
    notify(daemon, dunst, "--content", "step 2 of 3", "--cover")
    notify(daemon, dunst, "--content", "step 3 of 3", "--cover")
    seen = dunst.wait_seen(3)
    assert {s["id"] for s in seen} == {first["id"]}  # the same notification, replaced
    assert dunst.count_displayed() == 1
    assert f"uint32 {first['id']}" in dunst.monitor_log()
    notify(daemon, dunst, "--content", "not a cover")
    assert dunst.wait_displayed(2) == 2


def test_cover_replaces_the_previous_notification_whatever_it_was(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    """uni's cover is 是否覆盖上一次提示的消息: the app's previous notification, plain or
    not, is replaced in place."""
    daemon = start(tmp_path, procs, dunst, app_root)
    notify(daemon, dunst, "--content", "first")
    (first,) = dunst.wait_seen(1)
    notify(daemon, dunst, "--content", "second", "--cover")
    seen = dunst.wait_seen(2)
    assert [s["id"] for s in seen] == [first["id"]] * 2
    assert dunst.count_displayed() == 1


def test_covers_asked_for_at_once_leave_one_notification(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    """A progress bar's first steps, sent without awaiting each (as a page's
    uni.createPushMessage calls are): each cover replaces the one before it, even one
    still on its way to the server, so dunst shows one notification, the last step."""
    import asyncio

    from unipush_bridge.clients.push import PushClient

    daemon = start(tmp_path, procs, dunst, app_root)

    async def steps() -> list[dict[str, object]]:
        async with PushClient(daemon.socket) as client:
            return await asyncio.gather(
                *(client.create_push_message(content=f"step {i}", cover=True) for i in range(4))
            )

    answers = asyncio.run(steps())
    assert [a["errMsg"] for a in answers] == ["createPushMessage:ok"] * 4
    seen = dunst.wait_seen(4)
    assert len({s["id"] for s in seen}) == 1, seen
    assert dunst.count_displayed() == 1


def test_delay_survives_a_restart_and_fires_once(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    asked = time.time()
    assert (
        notify(daemon, dunst, "--content", "later", "--delay", "3", "--payload", '{"k": 1}')
        == "createPushMessage:ok"
    )
    assert daemon.stop(signal.SIGTERM) == 0
    assert dunst.seen() == []
    restarted = start(tmp_path, procs, dunst, app_root)
    (seen,) = dunst.wait_seen(1, timeout=10)
    assert seen["body"] == "later"
    assert time.time() - asked >= 3
    time.sleep(1.5)
    assert len(dunst.seen()) == 1
    restarted.stop(signal.SIGTERM)
    start(tmp_path, procs, dunst, app_root)
    time.sleep(1)
    assert len(dunst.seen()) == 1  # not again after another restart


def test_the_right_payload_comes_back_among_ten(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    listener = Listener(daemon.socket, tmp_path / "listener.log", dunst.env).start()
    procs.append(listener)
    wait_listeners(daemon, 1)
    for n in range(10):
        notify(
            daemon, dunst, "--title", f"m{n}", "--content", "c", "--payload", json.dumps({"n": n})
        )
    dunst.wait_seen(10)
    clicked = []
    for _ in range(3):
        dunst.action(0)
        (event, *_) = listener.wait_events(len(clicked) + 1)[len(clicked) :]
        clicked.append(event)
        dunst.close()  # the clicked one goes; the next comes to the top
    for event in clicked:
        assert event["type"] == "click"
        assert event["data"]["title"] == f"m{event['data']['payload']['n']}"
    assert len({e["data"]["payload"]["n"] for e in clicked}) == 3
    history = json.loads(
        cli("history", "--socket", str(daemon.socket), "--json", env=dunst.env).stdout
    )
    assert len(history) == 10
    assert sorted(e["data"]["payload"]["n"] for e in history if e["clicked"]) == sorted(
        e["data"]["payload"]["n"] for e in clicked
    )


def test_open_url_opens_the_browser_and_app_command_starts_on_click(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    opened = tmp_path / "opened.txt"
    launched = tmp_path / "launched.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    command = json.dumps(["sh", "-c", f"echo launched >> {launched}"])
    daemon = start(
        tmp_path, procs, dunst, app_root, BROWSER=str(browser), UNIPUSH_BRIDGE_APP_COMMAND=command
    )
    gateway = next(p for p in procs if isinstance(p, GatewayProc))
    gateway.send(
        {
            "push_clientid": daemon.cid(),
            "title": "t",
            "content": "url",
            "payload": "p",
            "open_url": "https://example.com/order/42",
        }
    )
    dunst.wait_seen(1)
    dunst.action(0)
    wait_for(lambda: opened.exists() and opened.read_text(), 10, "the browser")
    assert opened.read_text().strip() == "https://example.com/order/42"
    assert not launched.exists()
    dunst.close_all()
    gateway.send({"push_clientid": daemon.cid(), "title": "t", "content": "app", "payload": "p"})
    dunst.wait_seen(2)
    dunst.action(0)
    wait_for(lambda: launched.exists() and launched.read_text(), 10, "the app command")


def test_a_hung_server_never_blocks_the_daemon(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root, UNIPUSH_BRIDGE_NOTIFY_TIMEOUT="1")
    os.kill(dunst.dunst_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        res = cli("notify", "--socket", str(daemon.socket), "--content", "x", env=dunst.env)
        assert time.monotonic() - started < 5
        assert res.returncode == 1
        assert res.stderr.strip() == (
            "createPushMessage:fail notification server did not answer within 1 s"
        )
        assert daemon.status()["connection"]["state"] == "connected"
    finally:
        os.kill(dunst.dunst_pid, signal.SIGCONT)


def test_long_text_is_cut_and_when_is_recorded(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], app_root: Path
) -> None:
    daemon = start(tmp_path, procs, dunst, app_root)
    notify(
        daemon,
        dunst,
        "--title",
        "T" * 300,
        "--content",
        "b" * 3000,
        "--when",
        "2026-01-02T03:04:05Z",
    )
    (seen,) = dunst.wait_seen(1)
    assert seen["summary"] == "T" * 255 + "…"
    assert seen["body"] == "b" * 499 + "…"  # issue 11 item 8: 500 characters at most
    history = json.loads(
        cli("history", "--socket", str(daemon.socket), "--json", env=dunst.env).stdout
    )
    assert history[0]["data"]["when"] == 1767323045000
    assert history[0]["clicked"] is False

"""The notification path on five real servers (issue 11): dunst, notification-daemon,
xfce4-notifyd, lxqt-notificationd and notify-osd, each on a private bus under Xvfb.

One real daemon (embedded gateway) per server; every case starts from a clean screen
(a restarted server on all but dunst, so the daemon also lives through an owner change
before each case). Clicks are made as a user makes them: ``dunstctl action`` on dunst,
xdotool on the popup (its action button on xfce). A case a server cannot do is an
expected failure with the reason, never a skip. A failed case leaves a screenshot in
``$UNIPUSH_E2E_ARTIFACTS`` (default: ``<tmp>/unipush-e2e-artifacts``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifstack import SERVERS, NotifStack, Popup, require_tools
from tests.procs import DaemonProc, post_json, wait_for
from unipush_bridge.clients.push import PushClient

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
DESKTOP_ENTRY = "com.example.matrix"
ARTIFACTS = Path(
    os.environ.get("UNIPUSH_E2E_ARTIFACTS", Path(tempfile.gettempdir()) / "unipush-e2e-artifacts")
)
#: What a click is on each server, as the daemon reports it in status.
CLICK = {"dunst": "body", "xfce4-notifyd": "button", "notify-osd": "none"}


class Matrix:
    """One server's stack and the daemon that talks to it."""

    def __init__(self, stack: NotifStack, daemon: DaemonProc, app_icon: Path) -> None:
        self.stack = stack
        self.daemon = daemon
        self.app_icon = app_icon
        self.key = stack.spec.key

    def api(self, method: str, **params: Any) -> dict[str, Any]:
        """One local API call; the raw answer (an errMsg ``...:fail`` does not raise)."""

        async def call() -> dict[str, Any]:
            client = PushClient(self.daemon.socket)
            try:
                return await client._call(method, params)
            finally:
                await client.close()

        return asyncio.run(call())

    def notify(self, **params: Any) -> dict[str, Any]:
        res = self.api("createPushMessage", **params)
        assert res["errMsg"] == "createPushMessage:ok", res
        return res

    def status(self) -> dict[str, Any]:
        return self.api("status")

    def entry(self, title: str) -> dict[str, Any]:
        """The newest history entry with this title."""
        entries = self.api("history", limit=20)["entries"]
        return next(e for e in entries if e["title"] == title)

    def clicks(self) -> int:
        return int(self.status()["counters"].get("clicks", 0))

    def wait_server(self) -> dict[str, Any]:
        """Until the daemon has read the running server instance."""
        return wait_for(
            lambda: (
                (s := self.status()["notification_server"]).get("available")
                and s.get("name") == self.stack.spec.name
                and s
            ),
            10,
            f"the daemon to find {self.key}",
        )

    def push(self, title: str, content: str) -> None:
        http = "http" + self.status()["gateway"].removeprefix("ws").split("/ws")[0]
        status, answer = post_json(
            f"{http}/api/__UNI__DESKTOP/sendMessage",
            {"push_clientid": self.daemon.cid(), "title": title, "content": content, "payload": {}},
        )
        assert status == 200, answer

    def other_app(self, title: str, *, action: bool) -> subprocess.Popen[str]:
        """Another app's notification (notify-send); with ``action`` it waits for a click
        and prints the action's key."""
        argv = ["notify-send", "--app-name", "other-app", title, "from another app"]
        if action:
            argv[1:1] = ["--action", "default=Open", "--wait"]
        return subprocess.Popen(
            argv, env=self.stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.stack.notify_calls() if c["app_name"] == "unipush-bridge"]

    def theirs(self) -> list[dict[str, Any]]:
        return [c for c in self.stack.notify_calls() if c["app_name"] == "other-app"]

    def popup_of(self, calls_before: int) -> Popup:
        """The popup drawn for the notification sent after ``calls_before`` calls."""
        self.stack.wait_notify(calls_before + 1)
        return self.stack.wait_popups_at_least(1)[-1]


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[Matrix]:
    key: str = request.param
    require_tools(key)
    with NotifStack(server=key) as stack, tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "daemon"
        icon = Path(tmp) / "icon.png"
        icon.write_bytes(PNG)
        env = {
            **stack.env,
            "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
            "UNIPUSH_BRIDGE_FLOOD_THRESHOLD": "0",
            "UNIPUSH_BRIDGE_DESKTOP_ENTRY": DESKTOP_ENTRY,
        }
        daemon = DaemonProc(state, None, env=env).start()
        try:
            yield Matrix(stack, daemon, icon)
        finally:
            daemon.stop()


@pytest.fixture
def m(server: Matrix, request: pytest.FixtureRequest) -> Iterator[Matrix]:
    """A clean screen, the daemon caught up with the server; a screenshot if it fails."""
    server.stack.clear()
    server.wait_server()
    failed = request.session.testsfailed
    yield server
    if request.session.testsfailed > failed:
        name = request.node.name.replace("/", "_")
        shot = server.stack.screenshot(ARTIFACTS / f"{name}.png")
        print(f"screenshot of the failure: {shot}")


def _expect_no_click(m: Matrix) -> None:
    if m.stack.spec.click == "none":
        pytest.xfail(
            f"{m.key} has no actions capability: the daemon sends no action (else it draws "
            "a dialog that never expires), so no click can be made there"
        )


# --- show, markup, icon, hints ------------------------------------------------------------


def test_show_escapes_markup_and_sends_icon_and_hints(m: Matrix) -> None:
    """issue 11 items 3, 4, 7 (and markup, icon): what each server is sent."""
    m.notify(title="Matrix <i>", content="<b>bold</b> & more", icon=str(m.app_icon))
    (call,) = m.stack.wait_notify(1)
    assert call["summary"] == "Matrix <i>"
    assert call["body"] == "&lt;b&gt;bold&lt;/b&gt; &amp; more"  # all five have body-markup
    assert call["icon"] == m.app_icon.as_uri()
    expected_actions = {"button": ["default", "Open"], "none": []}.get(
        m.stack.spec.click, ["default", ""]
    )
    assert call["actions"] == expected_actions
    hints = call["hints"]
    assert hints["desktop-entry"] == DESKTOP_ENTRY
    assert hints["sound-name"] == "message-new-instant"  # a freedesktop sound name
    assert hints["urgency"] == 1 and call["timeout"] == -1
    assert isinstance(call["id"], int) and call["id"] > 0
    assert m.stack.wait_popups_at_least(1)
    assert m.status()["notification_server"]["click"] == CLICK.get(m.key, "body")


def test_a_push_is_shown(m: Matrix) -> None:
    """The gateway path to each server."""
    m.push("Order shipped", "Your order #42 is on its way")
    (call,) = m.stack.wait_notify(1)
    assert (call["summary"], call["body"]) == ("Order shipped", "Your order #42 is on its way")


def test_urgency_and_a_critical_that_expires(m: Matrix) -> None:
    """issue 11 item 7: low is urgency 0, importance 4 is critical with an explicit
    expiry (never one that stays for ever), sound none suppresses the sound."""
    for cid, importance in (("low", 2), ("high", 4)):
        res = m.api("setPushChannel", channelId=cid, channelDesc=cid, importance=importance)
        assert res["errMsg"] == "setPushChannel:ok", res
    m.notify(content="low one", channelId="low", sound="none")
    m.notify(content="critical one", channelId="high")
    low, high = m.stack.wait_notify(2)
    assert low["hints"]["urgency"] == 0 and low["timeout"] == -1
    assert low["hints"].get("suppress-sound") is True and "sound-name" not in low["hints"]
    assert high["hints"]["urgency"] == 2 and high["timeout"] == 30_000


def test_long_text_fits_the_screen(m: Matrix) -> None:
    """issue 11 item 8: a 2,048-character body (and one of 100 lines) is cut to what
    every server draws inside an 800-pixel screen; history keeps the whole text."""
    long_body = ("word " * 410)[:2048]
    m.notify(title="Long", content=long_body)
    (call,) = m.stack.wait_notify(1)
    assert len(call["body"]) <= 500 and call["body"].endswith("…")
    popup = m.stack.wait_popups_at_least(1)[-1]
    assert popup.height < m.stack.screen_size[1] - 100, popup
    m.stack.clear()
    m.wait_server()
    m.notify(title="Lines", content="\n".join(f"line {i}" for i in range(100)))
    (call,) = m.stack.wait_notify(1)
    assert call["body"].count("\n") <= 9
    popup = m.stack.wait_popups_at_least(1)[-1]
    assert popup.height < m.stack.screen_size[1] - 100, popup
    assert m.entry("Long")["content"] == long_body


# --- click and cover ------------------------------------------------------------------------


def test_click_reaches_the_daemon(m: Matrix) -> None:
    """issue 11 item 3: a user's click makes a click event on every server with actions
    (on xfce4-notifyd only the labelled button does)."""
    _expect_no_click(m)
    before = m.clicks()
    m.notify(title="Click me", content="please")
    popup = m.popup_of(0)
    m.stack.click(popup)
    wait_for(lambda: m.clicks() == before + 1, 10, f"the click on {m.key}")
    assert m.entry("Click me")["clicked"]


def test_cover_replaces_in_place(m: Matrix) -> None:
    """cover on each server: the second notification takes the first one's place."""
    m.notify(title="First", content="one")
    (first,) = m.stack.wait_notify(1)
    m.notify(title="Second", content="two", cover=True)
    _, second = m.stack.wait_notify(2)
    assert second["replaces_id"] == first["id"]
    assert second["id"] == first["id"]


# --- server restart, another app ------------------------------------------------------------


def test_restart_voids_cover_id_and_clicks(m: Matrix) -> None:
    """issue 11 items 1, 2, 5: after the server restarts (ids start again at 1) another
    app's notification gets the id ours had. Our cover must not replace it, a click on
    it is not ours, and the daemon reads the new instance."""
    if m.key == "dunst":  # clear() only resets dunst; ids must start at 1 here
        m.stack.restart_server()
        m.wait_server()
    before = m.clicks()
    m.notify(title="Ours", content="before the restart")
    (ours,) = m.stack.wait_notify(1)
    m.stack.restart_server()
    m.wait_server()
    other = m.other_app("Theirs", action=m.stack.spec.click != "none")
    try:
        theirs = wait_for(lambda: [c for c in m.theirs() if c["id"]], 5, "their id")[0]
        # the new instance gives the same id out again
        assert theirs["id"] == ours["id"], (ours, theirs)
        if m.stack.spec.click != "none":
            popup = m.stack.wait_popups_at_least(1)[-1]
            m.stack.click(popup)
            out, _ = other.communicate(timeout=10)
            assert "default" in out  # their click happened, and reached them
        m.notify(title="Ours again", content="cover after the restart", cover=True)
        again = wait_for(lambda: [c for c in m.ours() if c["summary"] == "Ours again"], 5, "")
        assert again[0]["replaces_id"] == 0  # a new one, not theirs replaced
        m.stack.wait_notify(len(m.stack.notify_calls()))
        assert m.clicks() == before
        assert not m.entry("Ours")["clicked"]
    finally:
        other.kill()
        other.wait()


def test_interleaved_with_another_app(m: Matrix) -> None:
    """issue 11 items 1, 2: our cover replaces ours, never the other app's in between,
    and a click on theirs gives no click event to us."""
    before = m.clicks()
    m.notify(title="Ours 1", content="one")
    m.stack.wait_notify(1)
    other = m.other_app("Theirs", action=m.stack.spec.click != "none")
    try:
        wait_for(lambda: [c for c in m.theirs() if c["id"]], 5, "their notification")
        m.notify(title="Ours 2", content="two", cover=True)
        calls = m.stack.wait_notify(3)
        ours1, theirs, ours2 = (
            next(c for c in calls if c["summary"] == s) for s in ("Ours 1", "Theirs", "Ours 2")
        )
        assert ours2["replaces_id"] == ours1["id"] != theirs["id"]
        if m.stack.spec.click == "none":
            return
        # ours was replaced in place: theirs is the newest of the two on the screen
        m.stack.click_newest(2)
        out, _ = other.communicate(timeout=10)
        assert "default" in out
        assert m.clicks() == before
    finally:
        other.kill()
        other.wait()

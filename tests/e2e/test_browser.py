"""A uni-app H5 page in real headless Chromium against a real daemon and dunst (issue 15
items 3 and 4, the browser half).

The page (tests/e2e/uniapp_h5/, written as uni-app apps call uni.*) is served from a
loopback origin listed in web_origins, loads /sdk.js from the daemon's web endpoint by
a script tag, pairs with a token from `unipush-bridge web pair`, gets the cid, takes a
push sent through the embedded gateway, re-posts it with createPushMessage, and dunst
shows it; a click on it (dunstctl, as a user's) reaches the page's onPushMessage as
click with the same payload object. A page of a foreign origin is refused. Chromium is
driven over the DevTools protocol with the websockets package: Target.createTarget,
Runtime.evaluate with awaitPromise.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.notifstack import DunstStack
from tests.procs import DaemonProc, Proc, cli, free_port, post_json, wait_for

PAGE_DIR = Path(__file__).resolve().parent / "uniapp_h5"
VITE_DIR = PAGE_DIR / "vite"
SDK_DIR = Path(__file__).resolve().parents[2] / "js" / "sdk"
# The push names of uni-h5-vite's lib/api.json: what its inject plugin turns into imports.
UNI_H5_PUSH_APIS = ("getPushClientId", "invokePushCallback", "offPushMessage", "onPushMessage")
APPID = "__UNI__DESKTOP"


def require_chromium() -> str:
    """dev.sh installs Debian's chromium; under CI its absence fails, elsewhere skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "chromium is not installed (Debian package chromium; dev.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser tests")
        pytest.skip(reason)
    return found


class Chromium:
    """Headless Chromium with a private profile, driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.profile = profile
        self.log = profile.parent / "chromium.log"
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",  # we run as root in CI; the sandbox refuses root
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        active = profile / "DevToolsActivePort"
        wait_for(
            lambda: self._alive() and active.exists() and active.read_text().count("\n"),
            20,
            "chromium's DevToolsActivePort",
        )
        port, path = active.read_text().split("\n")[:2]
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
        )
        self._ids = itertools.count(1)

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"chromium exited: {self.log.read_text()[-2000:]}")
        return True

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        rid = next(self._ids)
        msg: dict[str, Any] = {"id": rid, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            answer = json.loads(self.ws.recv(timeout=20))
            if answer.get("id") == rid:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str) -> str:
        """A new tab on ``url``; returns its session for evaluate()."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        session: str = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, session: str, expression: str, timeout: float, what: str) -> Any:
        return wait_for(lambda: self.evaluate(session, expression), timeout, what)

    def stop(self) -> None:
        try:
            self._stack.close()
        finally:
            self.proc.kill()
            self.proc.wait(10)


class PageServer:
    """The H5 build, served on a loopback port: index.html with the SDK's URL put in."""

    def __init__(self, root: Path, port: int, sdk_url: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(PAGE_DIR / "app.js", root / "app.js")
        html = (PAGE_DIR / "index.html").read_text().replace("__SDK__", sdk_url)
        (root / "index.html").write_text(html)
        handler = functools.partial(QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.origin = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def inject_uni_h5(code: str) -> str:
    """``code`` as uni-h5-vite's production build has it: each ``uni.<api>`` that
    lib/api.json lists becomes an import from @dcloudio/uni-h5 (dcloudio/uni-app
    packages/uni-h5-vite/src/plugins/inject.ts with packages/uni-cli-shared/src/vite/
    plugins/inject.ts: ``import { getPushClientId as $inject_uni_getPushClientId } from
    '@dcloudio/uni-h5';`` and the member expression replaced by that name); any other
    ``uni.x`` stays a read of the global uni."""
    used = [name for name in UNI_H5_PUSH_APIS if re.search(rf"\buni\.{name}\b", code)]
    for name in used:
        code = re.sub(rf"\buni\.{name}\b", f"$inject_uni_{name}", code)
    imports = "".join(
        f"import {{ {name} as $inject_uni_{name} }} from './uni-h5.js';\n" for name in used
    )
    return imports + code


class ViteAppServer(PageServer):
    """A uni-app H5 project (tests/e2e/uniapp_h5/vite/) as uni's Vite plugins serve it:
    ``mode`` "dev" (``vite``, or a build with tree shaking off: the global uni is
    uni-h5's object) or "build" (a default production build: the global uni is ``{}``
    and uni.<api> calls are imports). The SDK is served from the page's own origin, as
    a bundle would carry it."""

    def __init__(self, root: Path, port: int, ws_url: str, mode: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(SDK_DIR, root / "sdk")
        shutil.copy(VITE_DIR / "uni-h5.js", root / "uni-h5.js")
        shutil.copy(VITE_DIR / f"pages-json-{mode}.js", root / "pages-json.js")
        for name in ("main.js", "App.js"):
            code = (VITE_DIR / name).read_text().replace("__WS__", ws_url)
            (root / name).write_text(inject_uni_h5(code) if mode == "build" else code)
        (root / "index.html").write_text(
            '<!doctype html><html><head><meta charset="utf-8"><title>uni-app H5</title></head>'
            '<body><div id="app"><ul id="log"></ul></div>'
            '<script type="module" src="/main.js"></script></body></html>'
        )
        handler = functools.partial(QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.origin = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    chrome = Chromium(require_chromium(), tmp_path / "profile")
    yield chrome
    chrome.stop()


def web_daemon(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], origin: str
) -> tuple[DaemonProc, str]:
    """A daemon with its embedded gateway and a web endpoint for ``origin``; returns it
    and its /sdk.js URL."""
    daemon = DaemonProc(
        tmp_path / "daemon",
        None,
        env={
            **dunst.env,
            "UNIPUSH_BRIDGE_WEB_PORT": "0",
            "UNIPUSH_BRIDGE_WEB_ORIGINS": json.dumps([origin]),
            "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
        },
    )
    procs.append(daemon.start())
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "the notifier")
    web = daemon.status()["web"]
    return daemon, web.replace("ws://", "http://").removesuffix("/ws") + "/sdk.js"


def send(daemon: DaemonProc, body: dict[str, Any]) -> None:
    """sendMessage through the embedded gateway, the way server code calls it."""
    gateway = daemon.status()["gateway"].replace("ws://", "http://").split("/ws")[0]
    status, answer = post_json(f"{gateway}/api/{APPID}/sendMessage", body)
    assert status == 200 and answer["errCode"] == 0, answer


def pair(daemon: DaemonProc, origin: str) -> str:
    paired = cli("web", "pair", "--origin", origin, "--state-dir", str(daemon.socket.parent))
    assert paired.returncode == 0, paired.stderr
    return paired.stdout.strip()


def test_uniapp_page_in_chromium_gets_push_notifies_and_gets_its_click(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], browser: Chromium
) -> None:
    """issue 15 items 3 and 4: cid, receive, createPushMessage on dunst, the click back
    with the same payload object; and a foreign origin's page is refused."""
    page_port, foreign_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{page_port}"
    daemon, sdk = web_daemon(tmp_path, dunst, procs, origin)
    pages = [
        PageServer(tmp_path / "h5", page_port, sdk),
        PageServer(tmp_path / "foreign", foreign_port, sdk),
    ]
    try:
        token = pair(daemon, origin)

        tab = browser.open(f"{origin}/index.html?token={token}")
        cid = browser.wait(tab, "window.appState && window.appState.cid", 15, "the page's cid")
        assert cid == daemon.cid()
        assert browser.evaluate(tab, "localStorage.getItem('unipush-bridge-token')") == token
        wait_for(lambda: daemon.status()["listeners"] == 1, 10, "the page as a listener")

        # a push through the embedded gateway, the way server code sends one
        payload = {"chatId": "c-42", "from": {"id": 7, "name": "Ada"}}
        send(
            daemon,
            {"push_clientid": cid, "title": "Ada", "content": "Lunch at one?", "payload": payload},
        )
        events = browser.wait(
            tab,
            "window.appState.events.length && window.appState.events",
            10,
            "the receive on the page",
        )
        assert events[0]["type"] == "receive"
        assert events[0]["data"]["payload"] == payload
        assert events[0]["data"]["unipush_version"] == "2.0"

        # the page re-posted it with createPushMessage: dunst shows it
        shown = dunst.wait_seen(1, timeout=10)
        assert (shown[0]["summary"], shown[0]["body"]) == ("Ada", "Lunch at one?")
        assert browser.evaluate(tab, "window.appState.createError || null") is None

        # the user clicks it: the click reaches the page with the same payload object
        dunst.action(0)
        clicks = browser.wait(
            tab,
            "window.appState.clicks.length && window.appState.clicks",
            10,
            "the click on the page",
        )
        assert clicks == [{"payload": payload, "same": True}]
        channels = browser.evaluate(tab, "uni.getChannelManager().getAllChannels()")
        assert channels.index("chat") >= 0

        # a page of a foreign origin, even with the token, gets nothing
        foreign = browser.open(f"{pages[1].origin}/index.html?token={token}")
        error = browser.wait(
            foreign, "window.appState && window.appState.cidError", 15, "the foreign page's refusal"
        )
        assert error.startswith("getPushClientId:fail connection closed"), error
        assert browser.evaluate(foreign, "window.appState.cid") is None
        refused = [e for e in daemon.logs() if e.get("event") == "refused a web request"]
        assert any(pages[1].origin in e.get("reason", "") for e in refused), refused
        assert daemon.status()["listeners"] == 1  # only the paired page
    finally:
        for page in pages:
            page.stop()


def test_a_click_while_no_page_is_open_reaches_the_next_page(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], browser: Chromium
) -> None:
    """issue 15 items 1 and 4: the cold-start click. A push while no page listens is a
    desktop notification; the user clicks it; the page opened afterwards gets that
    click in its onPushMessage, with the push's payload."""
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    daemon, sdk = web_daemon(tmp_path, dunst, procs, origin)
    page = PageServer(tmp_path / "h5", page_port, sdk)
    try:
        token = pair(daemon, origin)
        payload = {"url": "/pages/chat/chat?id=9"}
        send(
            daemon,
            {"push_clientid": daemon.cid(), "title": "Bo", "content": "ping", "payload": payload},
        )
        shown = dunst.wait_seen(1, timeout=10)
        assert (shown[0]["summary"], shown[0]["body"]) == ("Bo", "ping")
        dunst.action(0)
        wait_for(lambda: daemon.status()["counters"]["clicks"] >= 1, 10, "the click")

        tab = browser.open(f"{origin}/index.html?token={token}")
        events = browser.wait(
            tab,
            "window.appState && window.appState.events.length && window.appState.events",
            15,
            "the held click on the page",
        )
        assert events[0]["type"] == "click"
        assert events[0]["data"]["payload"] == payload
        assert browser.evaluate(tab, "window.appState.clicks") == [
            {"payload": payload, "same": False}  # not a notification this page made
        ]
    finally:
        page.stop()


@pytest.mark.parametrize("mode", ["dev", "build"])
def test_a_uniapp_vite_project_gets_its_cid_push_and_click_through_uni_h5(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], browser: Chromium, mode: str
) -> None:
    """A uni-app H5 project's own code, run the way uni's Vite plugins run it, with the
    SDK installed from main.js as docs/web.md says: in a production build the app's
    uni.getPushClientId/onPushMessage are uni-h5's own functions (imports), so the SDK
    must feed uni-h5 (invokePushCallback) as uni-push does; in dev the global uni is
    uni-h5's object. Either way: the cid, a receive, createPushMessage on dunst and
    the click back with the page's payload object."""
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    daemon, sdk = web_daemon(tmp_path, dunst, procs, origin)
    ws_url = sdk.replace("http://", "ws://").removesuffix("/sdk.js") + "/ws"
    page = ViteAppServer(tmp_path / "h5", page_port, ws_url, mode)
    try:
        token = pair(daemon, origin)
        tab = browser.open(f"{origin}/index.html?token={token}")
        got = browser.wait(
            tab,
            "window.appState && (window.appState.cid || window.appState.cidError)",
            15,
            "the page's cid",
        )
        assert got == daemon.cid()
        wait_for(lambda: daemon.status()["listeners"] == 1, 10, "the page as a listener")

        payload = {"chatId": "c-7", "from": {"id": 3, "name": "Lin"}}
        send(daemon, {"push_clientid": got, "title": "Lin", "content": "Tea?", "payload": payload})
        events = browser.wait(
            tab, "window.appState.events.length && window.appState.events", 10, "the receive"
        )
        assert events[0]["type"] == "receive"
        assert events[0]["data"]["payload"] == payload

        shown = dunst.wait_seen(1, timeout=10)
        assert (shown[0]["summary"], shown[0]["body"]) == ("Lin", "Tea?")
        assert browser.evaluate(tab, "window.appState.createError || null") is None
        dunst.action(0)
        clicks = browser.wait(
            tab, "window.appState.clicks.length && window.appState.clicks", 10, "the click"
        )
        assert clicks == [{"payload": payload, "same": True}]
    finally:
        page.stop()

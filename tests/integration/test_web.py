"""The daemon's web endpoint (issue 15 item 2), on a real daemon process with its
embedded gateway, spoken to over real loopback HTTP and websockets, as a browser
would: the SDK file, the Origin, Host and token checks, what a page may call, the
rate limits, pushes and the SAME local API handling the Unix socket has."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.procs import DaemonProc, cli, post_json, wait_for
from unipush_bridge.runtime.web import MAX_CONNECTIONS

ORIGIN = "http://127.0.0.1:5599"
OTHER = "http://127.0.0.1:5600"
ROOT = Path(__file__).resolve().parents[2]
APPID = "__UNI__DESKTOP"


class Web:
    def __init__(self, daemon: DaemonProc, url: str, state_dir: Path) -> None:
        self.daemon = daemon
        self.url = url
        self.state_dir = state_dir
        self.port = int(urlsplit(url).port or 0)

    def pair(self, origin: str = ORIGIN) -> str:
        res = cli("web", "pair", "--origin", origin, "--state-dir", str(self.state_dir))
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    state = tmp_path_factory.mktemp("webd")
    daemon = DaemonProc(
        state,
        None,
        env={
            "UNIPUSH_BRIDGE_WEB_PORT": "0",
            "UNIPUSH_BRIDGE_WEB_ORIGINS": json.dumps([ORIGIN, OTHER]),
            "UNIPUSH_BRIDGE_WEB_RATE": "20",
            "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
        },
    )
    daemon.start()
    try:
        url = wait_for(lambda: daemon.status()["web"], 10, "the web endpoint")
        yield Web(daemon, url, state)
    finally:
        daemon.kill()


async def call(ws: ClientConnection, rid: int, method: str, **params: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"id": rid, "method": method, "params": params}))
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg.get("id") == rid and "result" in msg:
            result: dict[str, Any] = msg["result"]
            return result


async def paired(web: Web, token: str, origin: str = ORIGIN) -> ClientConnection:
    ws = await connect(web.url, origin=origin)  # type: ignore[arg-type]
    hello = await call(ws, 0, "hello", token=token)
    assert hello["errMsg"] == "hello:ok", hello
    return ws


def test_sdk_js_is_served_with_a_javascript_type(web: Web) -> None:
    """issue 15 item 2: GET /sdk.js is the SDK file itself, loadable as a module."""
    status, headers, body = web.get("/sdk.js", {"Host": f"127.0.0.1:{web.port}"})
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["access-control-allow-origin"] == "*"
    assert body == (ROOT / "js" / "sdk" / "unipush-bridge.js").read_bytes()
    # the ES module entry and the file it imports beside it
    for path, name in (("/sdk.mjs", "index.js"), ("/unipush-bridge.js", "unipush-bridge.js")):
        status, headers, body = web.get(path, {"Host": f"localhost:{web.port}"})
        assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
        assert body == (ROOT / "js" / "sdk" / name).read_bytes()


def test_foreign_host_is_refused_dns_rebinding(web: Web) -> None:
    """issue 15 item 2: a page on a hostile name that resolves to 127.0.0.1 sends its
    own name as Host: 403 with the reason, for the SDK and the websocket alike."""
    for path in ("/sdk.js", "/ws"):
        status, _, body = web.get(path, {"Host": f"evil.example:{web.port}", "Origin": ORIGIN})
        assert status == 403, path
        assert b"DNS rebinding" in body
    status, _, _ = web.get("/sdk.js", {"Host": f"localhost:{web.port}"})
    assert status == 200
    status, _, _ = web.get("/sdk.js", {"Host": "localhost:1"})  # not our port
    assert status == 403


def raw_get(port: int, path: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    """A GET with the headers exactly as listed, repeats too (http.client merges none,
    but this says it outright): the status and the body."""
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


UPGRADE = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]


@pytest.mark.parametrize("twice", ["Host", "Origin"])
@pytest.mark.parametrize("path", ["/ws", "/sdk.js"])
def test_a_header_sent_twice_is_refused_by_name(web: Web, twice: str, path: str) -> None:
    """Two Host or two Origin headers (both good ones, even): websockets' headers.get
    raised, so the request got a 500 and no reason. Now 400 naming the header: which
    of two a check would read is not for the endpoint to guess."""
    host = ("Host", f"127.0.0.1:{web.port}")
    origin = ("Origin", ORIGIN)
    headers = [host, origin, host if twice == "Host" else origin]
    status, body = raw_get(web.port, path, headers + (UPGRADE if path == "/ws" else []))
    if path == "/sdk.js" and twice == "Origin":
        assert status == 200  # the SDK does not read Origin: any page may load it
        return
    assert (status, body) == (
        400,
        f"more than one {twice} header: a request must carry exactly one\n".encode(),
    )
    assert web.get("/sdk.js", {"Host": f"localhost:{web.port}"})[0] == 200  # still serving


async def test_foreign_or_missing_origin_is_refused(web: Web) -> None:
    """issue 15 item 2: only web_origins' pages get a websocket (HTTP 403 + reason)."""
    with pytest.raises(InvalidStatus) as refused:
        await connect(web.url, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    assert b"not in the web_origins setting" in refused.value.response.body
    with pytest.raises(InvalidStatus) as no_origin:
        await connect(web.url)
    assert no_origin.value.response.status_code == 403
    assert b"Origin header is required" in no_origin.value.response.body


async def test_hello_needs_a_token_paired_with_this_origin(web: Web) -> None:
    """issue 15 item 2: no token, a wrong one, another origin's: hello:fail and close
    4401; the paired one: hello:ok, then the same getPushClientId the socket answers."""
    token = web.pair()
    for bad, why in ((None, "pairing token is required"), ("x" * 43, "unknown or revoked")):
        ws = await connect(web.url, origin=ORIGIN)  # type: ignore[arg-type]
        params = {} if bad is None else {"token": bad}
        answer = await call(ws, 1, "hello", **params)
        assert answer["errMsg"].startswith("hello:fail ") and why in answer["errMsg"], answer
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401
    ws = await connect(web.url, origin=OTHER)  # type: ignore[arg-type]
    answer = await call(ws, 1, "hello", token=token)
    assert "paired with another origin" in answer["errMsg"]
    ws = await connect(web.url, origin=ORIGIN)  # type: ignore[arg-type]
    first = await call(ws, 1, "getPushClientId")
    assert first["errMsg"].startswith("hello:fail the first message must be a hello")
    ws = await paired(web, token)
    got = await call(ws, 2, "getPushClientId")
    assert got == {"errMsg": "getPushClientId:ok", "cid": web.daemon.cid()}
    await ws.close()


async def test_revoked_token_is_refused(web: Web) -> None:
    """issue 15 item 2: web pair --revoke takes effect at the next hello, no restart."""
    token = web.pair()
    listed = cli("web", "pair", "--list", "--state-dir", str(web.state_dir))
    assert ORIGIN in listed.stdout and token not in listed.stdout
    pair_id = next(
        line.split()[0] for line in reversed(listed.stdout.splitlines()) if ORIGIN in line
    )
    gone = cli("web", "pair", "--revoke", pair_id, "--state-dir", str(web.state_dir))
    assert gone.returncode == 0 and pair_id in gone.stdout
    ws = await connect(web.url, origin=ORIGIN)  # type: ignore[arg-type]
    answer = await call(ws, 1, "hello", token=token)
    assert "unknown or revoked" in answer["errMsg"]
    stored = (web.state_dir / f"{APPID}.web-pairs.json").read_text()
    assert token not in stored  # only hashes are kept


async def test_a_page_may_not_call_what_is_not_its_business(web: Web) -> None:
    """issue 15 item 2: no quiet hours toggle, history, clickHistory or status (the
    state dir and socket) from a page: <method>:fail with the reason."""
    ws = await paired(web, web.pair())
    for i, method in enumerate(("setQuietHours", "getQuietHours", "history", "status"), 1):
        answer = await call(ws, i, method, on=True)
        why = "not available to web pages (docs/web.md lists what a page may call)"
        assert answer == {"errMsg": f"{method}:fail {why}"}
    channels = await call(ws, 9, "getAllChannels")
    assert channels["errMsg"] == "getAllChannels:ok" and "DcloudChannelID" in channels["channels"]
    await ws.close()


async def test_rate_limit_per_connection(web: Web) -> None:
    """issue 15 item 2: past web_rate (20/s, a burst of 40) calls fail with the rule;
    a page that floods past ten times that is closed with 1008."""
    ws = await paired(web, web.pair())
    for i in range(60):
        await ws.send(json.dumps({"id": i, "method": "getAllChannels"}))
    answers = []
    while len(answers) < 60:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        answers.append(msg["result"]["errMsg"])
    limited = [a for a in answers if "rate limit" in a]
    assert (
        limited
        and limited[0] == "getAllChannels:fail rate limit: at most 20 calls a second from one page"
    )
    assert 10 <= len(limited) <= 25, len(limited)
    flood = json.dumps({"method": "ack", "params": {"push_ids": []}})
    with pytest.raises(ConnectionClosed):
        for _ in range(2000):
            await ws.send(flood)
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1008


async def test_connections_that_never_say_hello_give_way_at_the_cap(web: Web) -> None:
    """Websockets that had not said hello counted toward the 16 and each stayed 10 s:
    any local process could send an allowed Origin, open 16, do it again every 10 s,
    and every page got 503. Now at the cap the oldest one with no hello is closed
    (4400) for the newcomer; pages that said hello never are, and 16 of them still
    fill the endpoint (503)."""
    token = web.pair()
    mute = [await connect(web.url, origin=ORIGIN) for _ in range(MAX_CONNECTIONS)]  # type: ignore[arg-type]
    page = await paired(web, token)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(mute[0].recv(), 5)
    assert (mute[0].close_code, mute[0].close_reason) == (
        4400,
        "no hello; gave way to a new connection",
    )
    for _ in range(2 * MAX_CONNECTIONS):  # the silent ones keep coming: they push out each other
        mute.append(await connect(web.url, origin=ORIGIN))  # type: ignore[arg-type]
    got = await call(page, 1, "getPushClientId")
    assert got["errMsg"] == "getPushClientId:ok"
    second = await paired(web, token)  # still room for another page
    for ws in [*mute, page, second]:
        await ws.close()
    pages = [await paired(web, token) for _ in range(MAX_CONNECTIONS)]
    with pytest.raises(InvalidStatus) as full:
        await connect(web.url, origin=ORIGIN)  # type: ignore[arg-type]
    assert full.value.response.status_code == 503
    assert b"too many web connections (at most 16)" in full.value.response.body
    for ws in pages:
        assert (await call(ws, 2, "getAllChannels"))["errMsg"] == "getAllChannels:ok"
        await ws.close()


async def test_push_reaches_the_page_and_an_ack_settles_it(web: Web) -> None:
    """issue 15 item 2: a page that subscribes is a listener like any other: a push
    through the gateway arrives as the local API's event, and its ack is taken."""
    ws = await paired(web, web.pair())
    assert (await call(ws, 1, "onPushMessage", ack=True))["errMsg"] == "onPushMessage:ok"
    wait_for(lambda: web.daemon.status()["listeners"] >= 1, 5, "the page as a listener")
    gateway = web.daemon.status()["gateway"].replace("ws://", "http://").split("/ws")[0]
    cid = web.daemon.cid()
    status, body = post_json(
        f"{gateway}/api/{APPID}/sendMessage",
        {"push_clientid": cid, "title": "T", "content": "C", "payload": {"k": [1, 2]}},
    )
    assert status == 200, body
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg.get("event") == "push":
            break
    assert msg["data"]["type"] == "receive"
    assert msg["data"]["data"]["payload"] == {"k": [1, 2]}
    await ws.send(json.dumps({"method": "ack", "params": {"push_ids": [msg["push_id"]]}}))
    wait_for(lambda: web.daemon.status()["backlog"] == 0, 5, "the push settled")
    await ws.close()
    wait_for(lambda: web.daemon.status()["listeners"] == 0, 5, "the page gone")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"UNIPUSH_BRIDGE_WEB_PORT": "0", "UNIPUSH_BRIDGE_WEB_HOST": "0.0.0.0"},
            "key 'web_host' (flag, UNIPUSH_BRIDGE_WEB_HOST or config file): Value error, "
            "must be a loopback address",
        ),
        (
            {"UNIPUSH_BRIDGE_WEB_PORT": "8790"},
            "key 'web_origins': empty while web_port is set",
        ),
        (
            {"UNIPUSH_BRIDGE_WEB_PORT": "0", "UNIPUSH_BRIDGE_WEB_ORIGINS": '["file:///x"]'},
            "key 'web_origins' (flag, UNIPUSH_BRIDGE_WEB_ORIGINS or config file): Value error, "
            "origin: 'file:///x' is not a web origin",
        ),
    ],
)
def test_bad_web_settings_name_the_key(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    """issue 15 item 2: settings errors name the key and the rule (exit 2)."""
    res = cli("run", "--state-dir", str(tmp_path), "--print-config", env=env)
    assert res.returncode == 2, res.stdout
    assert expected in res.stderr, res.stderr


def test_web_pair_refuses_what_is_not_an_origin(tmp_path: Path) -> None:
    """issue 15 item 2: `web pair --origin` takes an origin, not a page URL or a file."""
    res = cli("web", "pair", "--origin", "file:///index.html", "--state-dir", str(tmp_path))
    assert res.returncode == 2
    assert "is not a web origin" in res.stderr
    assert not (tmp_path / f"{APPID}.web-pairs.json").exists()


def test_a_taken_web_port_names_the_setting(tmp_path: Path) -> None:
    """issue 15 item 2: the daemon stops at start, exit 1, naming web_port and the way out."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        res = cli(
            "run",
            "--state-dir",
            str(tmp_path),
            "--socket",
            str(tmp_path / "api.sock"),
            "--embedded-port",
            "0",
            env={
                "UNIPUSH_BRIDGE_WEB_PORT": str(port),
                "UNIPUSH_BRIDGE_WEB_ORIGINS": json.dumps([ORIGIN]),
                "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
                "UNIPUSH_BRIDGE_LOG_LEVEL": "error",
            },
        )
    assert res.returncode == 1, res.stderr
    assert f"web_port: port {port} on 127.0.0.1 is taken by another program" in res.stderr
    assert not (tmp_path / "api.sock").exists()


def test_web_pair_makes_a_missing_state_dir_private(tmp_path: Path) -> None:
    """`web pair` before the daemon ever ran makes the state dir: it and each parent
    made are 0700 whatever the umask, as the daemon makes them (they will hold the
    cid's secret and every message)."""
    state = tmp_path / "a" / "b" / "state"
    old = os.umask(0o022)
    try:
        res = cli("web", "pair", "--origin", ORIGIN, "--state-dir", str(state))
    finally:
        os.umask(old)
    assert res.returncode == 0, res.stderr
    for made in (tmp_path / "a", tmp_path / "a" / "b", state):
        assert stat.S_IMODE(os.lstat(made).st_mode) == 0o700, made
    assert stat.S_IMODE(os.lstat(state / f"{APPID}.web-pairs.json").st_mode) == 0o600

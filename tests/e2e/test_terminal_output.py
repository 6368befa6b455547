"""issue 10 item 6: a sender's terminal control sequences never reach a terminal.

The real CLI commands run as processes against a real daemon (and a real gateway,
dunst for history); their output is read as bytes and must hold no raw ESC, BEL, C1
or bidi control, while --json output still reads back as the sender's exact text.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.notifstack import DunstStack
from tests.procs import (
    CLI,
    DaemonProc,
    GatewayProc,
    Proc,
    _env,
    free_port,
    wait_for,
    wait_listeners,
)

#: Window title (OSC 0), clear screen (CSI 2J), clipboard write (OSC 52), a C1 CSI
#: (U+009B), a right-to-left override and a bidi isolate.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b31m\u202eevil\u2066x\u2069\x7f"
#: uni-push allows titles of at most 20 characters.
TITLE = "\x1b]0;pwned\x07\x9b2J\u202eevil"
RAW = [b"\x1b", b"\x07", b"\x7f", "\x9b".encode(), "\u202e".encode(), "\u2066".encode()]


def assert_inert(out: bytes, what: str) -> None:
    for raw in RAW:
        assert raw not in out, f"{what} printed {raw!r} raw: {out[:400]!r}"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, env=_env(env), timeout=30, check=False
    )


@pytest.fixture
def stack(tmp_path: Path, dunst: DunstStack, procs: list[Proc]) -> tuple[GatewayProc, DaemonProc]:
    gateway = GatewayProc(tmp_path / "gw", env=dunst.env).start()
    procs.append(gateway)
    daemon = DaemonProc(
        tmp_path / "daemon", gateway.ws_url, env={**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    ).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    return gateway, daemon


def test_listen_history_and_status_print_no_control_sequences(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc], stack: tuple[GatewayProc, DaemonProc]
) -> None:
    """issue 10 item 6: listen (text and --json) and history (text and --json)."""
    gateway, daemon = stack
    cid = daemon.cid()
    push = {"push_clientid": cid, "title": TITLE, "content": HOSTILE, "payload": HOSTILE}
    # Nobody listens: a notification, so it is in the history.
    assert gateway.send(push)[0] == 200
    dunst.wait_seen(1)
    sock = str(daemon.socket)
    text = Proc(["listen", "--socket", sock], tmp_path / "listen-text.log").start()
    as_json = Proc(["listen", "--json", "--socket", sock], tmp_path / "listen-json.log").start()
    procs += [text, as_json]
    wait_listeners(daemon, 2)
    assert gateway.send({**push, "request_id": "terminal-test-0002"})[0] == 200
    wait_for(lambda: as_json.stdout_path.read_bytes().count(b"\n") >= 1, 10, "listen --json")
    wait_for(lambda: b"receive" in text.stdout_path.read_bytes(), 10, "listen")

    out = text.stdout_path.read_bytes()
    assert_inert(out, "listen")
    assert b"\\x1b]0;pwned\\x07" in out and b"\\u202e" in out
    out = as_json.stdout_path.read_bytes()
    assert_inert(out, "listen --json")
    event = json.loads(out.splitlines()[0])
    assert event["data"]["content"] == HOSTILE  # the same text for a JSON reader

    for args, what in ((["history"], "history"), (["history", "--json"], "history --json")):
        res = run(*args, "--socket", sock)
        assert res.returncode == 0, res.stderr
        assert_inert(res.stdout, what)
    (entry,) = json.loads(run("history", "--json", "--socket", sock).stdout)
    assert (entry["title"], entry["content"]) == (TITLE, HOSTILE)


async def _close_with(reason: str, port: int, ready: threading.Event, stop: asyncio.Event) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the hello
        await ws.close(4000, reason)

    async with serve(handler, "127.0.0.1", port):
        ready.set()
        await stop.wait()


@pytest.fixture
def hostile_gateway() -> Iterator[str]:
    """A websocket server that answers every hello with a close whose reason is HOSTILE."""
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(_close_with(HOSTILE[:60], port, ready, stop),)
    )
    thread.start()
    assert ready.wait(10)
    yield f"ws://127.0.0.1:{port}"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def test_status_prints_the_gateways_close_reason_inert(
    tmp_path: Path, procs: list[Proc], hostile_gateway: str
) -> None:
    """issue 10 item 6: status' last_error (a close reason the gateway chose)."""
    daemon = DaemonProc(
        tmp_path / "daemon", hostile_gateway, env={"UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    ).start(wait_registered=False)
    procs.append(daemon)
    wait_for(lambda: daemon.status()["connection"]["last_error"], 10, "the close")
    for args in (["status"], ["status", "--json"]):
        res = run(*args, "--socket", str(daemon.socket))
        assert res.returncode == 0, res.stderr
        assert_inert(res.stdout, " ".join(args))
    res = run("status", "--socket", str(daemon.socket))
    assert b"last error: closed by the gateway (4000: \\x1b]0;pwned\\x07" in res.stdout


async def _register(ws_url: str) -> None:
    """One device of __UNI__DESKTOP, as a daemon's hello makes it."""
    from websockets.asyncio.client import connect

    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "appid": "__UNI__DESKTOP"}))
        assert json.loads(await ws.recv())["type"] == "welcome"


def test_gateway_console_log_prints_a_senders_request_id_inert(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """issue 10 item 6: the gateway's console log (logs.py) shows a sender's request_id
    ("dropped a repeated request_id") escaped."""
    gateway = GatewayProc(tmp_path / "gw", extra=["--log-format", "console"]).start()
    procs.append(gateway)
    request_id = "\x1b]0;pwned\x07\x9b2J\u202eid"
    # A broadcast: it succeeds once one device is registered (one hello).
    asyncio.run(_register(f"{gateway.ws_url}/ws"))
    body = {"title": "t", "content": "c", "payload": "p"}
    body["request_id"] = request_id
    assert gateway.send(body)[0] == 200
    assert gateway.send(body)[0] == 200
    wait_for(lambda: b"repeated request_id" in gateway.log_path.read_bytes(), 10, "the log line")
    out = gateway.log_path.read_bytes()
    assert_inert(out, "the gateway's log")
    assert b"\\x1b]0;pwned\\x07" in out

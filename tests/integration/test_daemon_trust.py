"""The real daemon against the real gateway, as processes on loopback (issue 10 items 1
and 2): the daemon proves its cid with its secret, a store from before secrets keeps
its cid, and a gateway whose data comes back from a backup (or is lost) still delivers
to a daemon whose cursor is ahead of it."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.procs import DaemonProc, GatewayProc, Listener, Proc, wait_for, wait_listeners

NO_SERVER = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus", "DISPLAY": ""}
APP = "__UNI__DESKTOP"


def start_gateway(data_dir: Path, procs: list[Proc], port: int | None = None) -> GatewayProc:
    gw = GatewayProc(data_dir, port=port, env=NO_SERVER).start()
    procs.append(gw)
    return gw


def start_daemon(state_dir: Path, procs: list[Proc], gateway: GatewayProc) -> DaemonProc:
    daemon = DaemonProc(state_dir, gateway.ws_url, env=NO_SERVER).start()
    procs.append(daemon)
    return daemon


def start_listener(tmp_path: Path, procs: list[Proc], daemon: DaemonProc) -> Listener:
    listener = Listener(daemon.socket, tmp_path / "listener.log", NO_SERVER).start()
    procs.append(listener)
    wait_listeners(daemon, 1)
    return listener


def push(gateway: GatewayProc, cid: str, title: str) -> str:
    body = {"push_clientid": cid, "title": title, "content": "c", "payload": {}}
    status, answer = gateway.send(body)
    assert status == 200, answer
    ((_, per_cid),) = answer["data"].items()
    return str(per_cid[cid])


def titles(listener: Listener, n: int) -> list[str]:
    return [e["data"]["title"] for e in listener.wait_events(n)]


def stored_cursor(daemon: DaemonProc) -> int:
    db = sqlite3.connect(daemon.log_path.parent / f"{APP}.sqlite3")
    try:
        return int(db.execute("SELECT acked FROM identity").fetchone()[0])
    finally:
        db.close()


async def thief_hello(gateway: GatewayProc, cid: str) -> tuple[dict[str, object], int | None]:
    async with connect(f"{gateway.ws_url}/ws") as ws:
        await ws.send(json.dumps({"type": "hello", "appid": APP, "cid": cid, "acked": 0}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            return frame, exc.rcvd.code if exc.rcvd else None
    return frame, None


def test_the_daemon_owns_its_cid_and_a_thief_is_refused(tmp_path: Path, procs: list[Proc]) -> None:
    """issue 10 item 1: a websocket with the daemon's cid took its registration and
    its pushes. The real daemon now binds its cid with its secret: the thief gets
    cid_taken (4403), the daemon stays connected and gets the next push."""
    gateway = start_gateway(tmp_path / "gw", procs)
    daemon = start_daemon(tmp_path / "d", procs, gateway)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    frame, code = asyncio.run(thief_hello(gateway, cid))
    assert frame["code"] == "cid_taken" and code == 4403
    assert push(gateway, cid, "after the thief") == "successed_online"
    assert titles(listener, 1) == ["after the thief"]
    log = gateway.log_path.read_text()
    secret = (
        sqlite3.connect(tmp_path / "d" / f"{APP}.sqlite3")
        .execute("SELECT secret FROM identity")
        .fetchone()[0]
    )
    assert len(secret) == 64 and secret not in log  # never logged
    assert "refused a hello for a cid bound to another secret" in log


def test_a_daemon_store_from_before_secrets_keeps_its_cid(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """issue 10 item 1: a daemon upgraded from a store with a cid and no secret makes a
    secret, keeps its cid, and binds it on its next hello."""
    gateway = start_gateway(tmp_path / "gw", procs)
    state = tmp_path / "d"
    state.mkdir(mode=0o700)
    cid = "0123456789abcdef0123456789abcdef"
    db = sqlite3.connect(state / f"{APP}.sqlite3")
    db.execute(
        "CREATE TABLE identity (gateway TEXT NOT NULL, appid TEXT NOT NULL, cid TEXT, "
        "acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (gateway, appid))"
    )
    db.execute("INSERT INTO identity VALUES (?, ?, ?, 0)", (f"{gateway.ws_url}/ws", APP, cid))
    db.commit()
    db.close()
    daemon = start_daemon(state, procs, gateway)
    assert daemon.cid() == cid
    frame, code = asyncio.run(thief_hello(gateway, cid))
    assert frame["code"] == "cid_taken" and code == 4403


def reconnected(daemon: DaemonProc) -> None:
    """SIGCONT reconnects at once, rather than after the backoff a gateway restart ran up."""
    daemon.send_signal(signal.SIGCONT)
    wait_for(lambda: daemon.status()["connection"]["state"] == "connected", 15, "reconnect")


def test_a_gateway_restored_from_a_backup_still_delivers(tmp_path: Path, procs: list[Proc]) -> None:
    """issue 10 item 2: the gateway trusted the daemon's cursor (ahead of the restored
    data), so new pushes, numbered below it, answered successed_online and never came.
    Now the gateway resets the cursor, the daemon adopts it and acks later pushes."""
    gateway = start_gateway(tmp_path / "gw", procs)
    daemon = start_daemon(tmp_path / "d", procs, gateway)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    push(gateway, cid, "one")
    assert titles(listener, 1) == ["one"]
    gateway.stop()
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "gw", backup)
    gateway = start_gateway(tmp_path / "gw", procs, port=gateway.port)
    reconnected(daemon)
    push(gateway, cid, "two")
    push(gateway, cid, "three")
    assert titles(listener, 3) == ["one", "two", "three"]
    ahead = wait_for(lambda: (c := stored_cursor(daemon)) and c >= 3 and c, 10, "the acks")
    gateway.stop()
    shutil.rmtree(tmp_path / "gw")
    shutil.copytree(backup, tmp_path / "gw")
    gateway = start_gateway(tmp_path / "gw", procs, port=gateway.port)
    reconnected(daemon)
    assert push(gateway, cid, "four") == "successed_online"
    push(gateway, cid, "five")
    assert titles(listener, 5) == ["one", "two", "three", "four", "five"]
    assert f"hello.acked {ahead} is past the last seq" in gateway.log_path.read_text()


def test_a_gateway_that_lost_its_data_still_delivers(tmp_path: Path, procs: list[Proc]) -> None:
    """issue 10 item 2: the same with no data at all (the cid is unknown, the cursor 0)."""
    gateway = start_gateway(tmp_path / "gw", procs)
    daemon = start_daemon(tmp_path / "d", procs, gateway)
    listener = start_listener(tmp_path, procs, daemon)
    cid = daemon.cid()
    push(gateway, cid, "one")
    push(gateway, cid, "two")
    assert titles(listener, 2) == ["one", "two"]
    gateway.stop()
    shutil.rmtree(tmp_path / "gw")
    gateway = start_gateway(tmp_path / "gw", procs, port=gateway.port)
    reconnected(daemon)
    assert daemon.cid() == cid
    assert push(gateway, cid, "three") == "successed_online"
    assert titles(listener, 3) == ["one", "two", "three"]

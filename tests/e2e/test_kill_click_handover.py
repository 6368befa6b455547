"""A click kept for the next listener (no app listened when the user clicked), with
the daemon SIGKILLed after the listener took it and before the daemon wrote that
down. The next run hands the kept click over again, as it must; it used to make a
new id for it each time, so the client that already had it could not tell, and the
app got the click twice. The kept click now keeps its id on disk: the same
``PushClient`` drops the copy, as it drops a replayed receive.

The window (one SQLite commit) is forced open: the test holds the store's write
lock while the listener takes the click, so the daemon's clearing of it cannot
commit before the kill.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from pathlib import Path
from typing import Any

from tests.faults.harness import ReconnectingListener, start_daemon_fast
from tests.notifstack import DunstStack
from tests.procs import DaemonProc, Proc, wait_for


def create(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(
            json.dumps({"id": 1, "method": "createPushMessage", "params": params}).encode() + b"\n"
        )
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())["result"]
        return answer


def clicks(listener: ReconnectingListener) -> list[Any]:
    return [line["payload"] for line in listener.lines() if line.get("type") == "click"]


def test_a_kept_click_taken_just_before_a_kill_reaches_the_app_once(
    tmp_path: Path, dunst: DunstStack, procs: list[Proc]
) -> None:
    env = {**dunst.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    procs.append(daemon)
    wait_for(lambda: daemon.status()["notifications"] == "available", 10, "notifier")
    assert create(daemon.socket, {"content": "click me", "payload": {"k": 1}})["errMsg"] == (
        "createPushMessage:ok"
    )
    dunst.wait_seen(1)
    dunst.action(0)
    wait_for(lambda: daemon.status()["counters"]["clicks"] == 1, 10, "the click")

    lock = sqlite3.connect(tmp_path / "daemon" / f"{daemon.appid}.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the daemon's next write waits (busy_timeout 10 s)
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.out").start()
    try:
        wait_for(lambda: clicks(listener) == [{"k": 1}], 10, "the kept click at the listener")
        daemon.send_signal(signal.SIGKILL)
        daemon.proc.wait(5)
        lock.execute("ROLLBACK")
        lock.close()
        restarted = DaemonProc(tmp_path / "daemon", None, env=env)
        procs.append(restarted)
        start_daemon_fast(restarted)  # the dead daemon's socket file is still there
        listener.wait_subscribed(2)
        # The next run hands the kept click over again; the client had it already.
        wait_for(lambda: listener.suppressed() or len(clicks(listener)) > 1, 10, "the replay")
        assert clicks(listener) == [{"k": 1}], "the app got the click twice"
        assert listener.suppressed() == 1
    finally:
        listener.stop()

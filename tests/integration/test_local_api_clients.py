"""How the local API treats clients that end or step back politely, on a real daemon
process over its real Unix socket: a client that half-closes after its requests (as
``echo ... | socat - UNIX-CONNECT:...`` does) still gets its answers, and a listener
that unsubscribes with events not yet acknowledged gives them up at once, to the next
listener, instead of holding them until it counts as stuck and is cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import NO_SERVER
from tests.procs import DaemonProc, post_json, wait_for
from unipush_bridge.clients import PushClient
from unipush_bridge.wire import local as wire

APPID = "__UNI__DESKTOP"
#: The hold timeout of the daemon under test: long enough that waiting for it shows.
LISTENER_TIMEOUT_S = 8.0


class Line:
    """A raw local API client: lines in, parsed lines out."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, rid: int | None, method: str, **params: Any) -> None:
        if rid is None:
            self.sock.sendall((json.dumps({"method": method, "params": params}) + "\n").encode())
        else:
            self.sock.sendall(wire.encode_request(wire.Request(rid, method, params)))

    def next(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next line, or None at EOF."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def answer(self, rid: int, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg = self.next(timeout)
            assert msg is not None, "the daemon closed the connection"
            if msg.get("id") == rid and "result" in msg:
                result: dict[str, Any] = msg["result"]
                return result

    def event(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg = self.next(timeout)
            assert msg is not None, "the daemon closed the connection"
            if msg.get("event") == "push":
                return msg

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    proc = DaemonProc(
        tmp_path_factory.mktemp("apid"),
        None,
        env={**NO_SERVER, "UNIPUSH_BRIDGE_LISTENER_TIMEOUT": str(LISTENER_TIMEOUT_S)},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def test_a_half_closed_client_still_gets_its_answers(tmp_path: Path) -> None:
    """A daemon that cannot register answers getPushClientId after the timeout; a
    client that wrote its request and shut its sending side must still get that
    answer. Before, the daemon closed on the EOF and dropped every answer still
    being worked out."""
    proc = DaemonProc(tmp_path / "d", "ws://127.0.0.1:9/ws", env=NO_SERVER)
    proc.start(wait_registered=False)
    try:
        client = Line(proc.socket)
        client.send(1, "getPushClientId", timeout=0.5)
        client.send(2, "status")
        client.sock.shutdown(socket.SHUT_WR)
        got = {}
        while (msg := client.next()) is not None:
            got[msg["id"]] = msg["result"]["errMsg"]
        assert got.get(2) == "status:ok", got
        assert got.get(1, "").startswith("getPushClientId:fail register fail"), got
        client.close()
    finally:
        proc.kill()


def send_push(daemon: DaemonProc, title: str) -> None:
    gateway = daemon.status()["gateway"].replace("ws://", "http://").split("/ws")[0]
    status, body = post_json(
        f"{gateway}/api/{APPID}/sendMessage",
        {"push_clientid": daemon.cid(), "title": title, "content": "c", "payload": {"t": title}},
    )
    assert status == 200, body


def test_an_unsubscribed_listener_gives_up_what_it_did_not_acknowledge(
    daemon: DaemonProc,
) -> None:
    """A listener with acknowledgements gets a push, and calls offPushMessage before
    acknowledging it (a page whose last listener went, an app shutting a view). The
    push is not its any more: a listener that subscribes next gets it at once, and the
    first one, still connected, is not cut as stuck."""
    first = Line(daemon.socket)
    first.send(1, "onPushMessage", ack=True)
    assert first.answer(1)["errMsg"] == "onPushMessage:ok"
    send_push(daemon, "given-up")
    assert first.event()["data"]["data"]["title"] == "given-up"
    first.send(2, "offPushMessage")
    assert first.answer(2)["errMsg"] == "offPushMessage:ok"

    second = Line(daemon.socket)
    second.send(1, "onPushMessage", ack=True)
    started = time.monotonic()
    event = second.event(timeout=LISTENER_TIMEOUT_S * 3)
    waited = time.monotonic() - started
    assert event["data"]["data"]["title"] == "given-up"
    assert waited < LISTENER_TIMEOUT_S / 2, f"the next listener waited {waited:.1f} s"

    # The second gives it up too; the first, back, gets it again and its ack counts.
    second.send(2, "offPushMessage")
    assert second.answer(2)["errMsg"] == "offPushMessage:ok"
    first.send(3, "onPushMessage", ack=True)
    got: dict[str, dict[str, Any]] = {}  # the push comes before or after the answer
    while len(got) < 2:
        msg = first.next(timeout=LISTENER_TIMEOUT_S / 2)
        assert msg is not None, "the daemon closed the connection"
        got["event" if msg.get("event") == "push" else str(msg.get("id"))] = msg
    assert got["3"]["result"]["errMsg"] == "onPushMessage:ok"
    assert got["event"]["push_id"] == event["push_id"]
    first.send(None, "ack", push_ids=[event["push_id"]])
    wait_for(lambda: daemon.status()["backlog"] == 0, LISTENER_TIMEOUT_S / 2, "the ack counted")

    time.sleep(LISTENER_TIMEOUT_S + 1)  # past the hold timeout: neither was cut as stuck
    for n, client in enumerate((first, second), 4):
        client.send(n, "getAllChannels")
        assert client.answer(n)["errMsg"] == "getAllChannels:ok"
    first.close()
    second.close()


async def test_a_python_listener_that_sets_stopped_keeps_a_receive_from_the_later_ones(
    daemon: DaemonProc,
) -> None:
    """uni's dispatch rule (unipush-spec 1.2): a listener that sets ``res.stopped``
    keeps that ``receive`` from the listeners registered after it. The Python client
    handed it to every listener."""
    first: list[str] = []
    later: list[str] = []

    def stopper(res: dict[str, Any]) -> None:
        first.append(res["data"]["title"])
        res["stopped"] = True

    async with PushClient(daemon.socket) as push:
        await push.on_push_message(stopper)
        await push.on_push_message(lambda res: later.append(res["data"]["title"]))
        send_push(daemon, "stop-here")
        async with asyncio.timeout(10):
            while not first:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
    assert first == ["stop-here"]
    assert later == []
    wait_for(lambda: daemon.status()["backlog"] == 0, 5, "the push acknowledged")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_a_client_that_pipelines_slow_calls_does_not_grow_the_daemon(tmp_path: Path) -> None:
    """A client that writes 50,000 getPushClientId calls without waiting, to a daemon
    that cannot register (each call waits for the cid): the daemon took every line at
    once and kept a task for each, about 4 KiB a call (200,000 calls were 850 MB).
    Now it reads a connection no further while MAX_CALLS of its calls run; another
    connection is still answered at once."""
    proc = DaemonProc(tmp_path / "d", "ws://127.0.0.1:9/ws", env=NO_SERVER)
    proc.start(wait_registered=False)
    flood = socket.socket(socket.AF_UNIX)
    try:
        flood.connect(str(proc.socket))
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        line = wire.encode_request(wire.Request(1, "getPushClientId", {"timeout": 600}))

        def send_all() -> None:
            with contextlib.suppress(OSError):  # cut when the test ends
                flood.sendall(line * 50_000)

        threading.Thread(target=send_all, daemon=True).start()
        time.sleep(4)
        grown = rss_kib(proc.pid) - before
        other = Line(proc.socket)
        other.send(1, "status")
        assert other.answer(1, timeout=5)["errMsg"] == "status:ok"
        other.close()
        assert grown < 60_000, f"the daemon grew by {grown // 1024} MiB"
    finally:
        flood.close()
        proc.kill()

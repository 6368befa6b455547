"""How the local API treats clients that end or step back politely, on a real daemon
process over its real Unix socket: a client that half-closes after its requests (as
``echo ... | socat - UNIX-CONNECT:...`` does) still gets its answers."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.faults.harness import NO_SERVER
from tests.procs import DaemonProc
from unipush_bridge.wire import local as wire


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

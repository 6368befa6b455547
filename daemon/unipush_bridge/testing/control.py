"""The capture server's control API for tests in another process: JSON lines on a unix
socket. One request per line, one answer per line:

    {"op": "list", "closed": false}              -> {"ok": true, "result": [notification, ...]}
    {"op": "click", "id": 3, "action": "default"} -> {"ok": true, "result": null}
    {"op": "dismiss" | "expire" | "close", "id": 3}
    {"op": "wait", "count": 2, "timeout": 5}      -> {"ok": true, "result": [...]} once 2 came

A refused request answers ``{"ok": false, "error": "<field>: <rule>"}``; the line stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from .capture import CaptureServer
from .table import TableError

__all__ = ["ControlClient", "ControlError", "serve_control"]

#: A request line longer than this is refused (the answer names the limit).
MAX_REQUEST = 64 * 1024
ACTS = ("click", "dismiss", "expire", "close")


class ControlError(RuntimeError):
    """The capture server refused a control request; the message names field and rule."""


async def _dispatch(server: CaptureServer, req: Any, changed: asyncio.Condition) -> Any:
    if not isinstance(req, dict):
        raise TableError("request: must be a JSON object")
    op = req.get("op")
    if op == "list":
        table = server.table
        found = table.all() if req.get("closed") else table.shown()
        return [n.to_json() for n in found]
    if op in ACTS:
        nid = req.get("id")
        if not isinstance(nid, int) or isinstance(nid, bool):
            raise TableError(f"id: must be an integer notification id, got {nid!r}")
        action = req.get("action", "default")
        if not isinstance(action, str):
            raise TableError(f"action: must be a string, got {action!r}")
        server.act(op, nid, action)
        return None
    if op == "wait":
        count, timeout = req.get("count", 1), req.get("timeout", 10)
        if not isinstance(count, int) or not isinstance(timeout, int | float):
            raise TableError("count/timeout: must be numbers")
        async with changed:
            try:
                await asyncio.wait_for(
                    changed.wait_for(lambda: len(server.table.by_id) >= count), timeout
                )
            except TimeoutError:
                raise TableError(
                    f"count: {count} notification(s) not received in {timeout}s"
                ) from None
        return [n.to_json() for n in server.table.all()]
    raise TableError(f"op: unknown {op!r} (list, wait, {', '.join(ACTS)})")


async def serve_control(server: CaptureServer, path: Path) -> asyncio.Server:
    """Serve the control API for ``server`` on ``path`` (mode 0600 by the umask we set)."""
    changed = asyncio.Condition()

    def wake(_n: object) -> None:
        async def notify() -> None:
            async with changed:
                changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    server.on_notify = wake

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                try:
                    if len(line) > MAX_REQUEST:
                        raise TableError(f"request: longer than {MAX_REQUEST} bytes")
                    answer = {
                        "ok": True,
                        "result": await _dispatch(server, json.loads(line), changed),
                    }
                except (TableError, ValueError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        writer.close()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    old = os.umask(0o077)  # the socket is the owner's only
    try:
        return await asyncio.start_unix_server(handle, path, limit=MAX_REQUEST * 2)
    finally:
        os.umask(old)


class ControlClient:
    """Blocking client of the control API (one connection, requests in turn)."""

    def __init__(self, path: Path | str, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(str(path))
        self._file = self._sock.makefile("rb")

    def request(self, **req: Any) -> Any:
        self._sock.sendall(json.dumps(req).encode() + b"\n")
        line = self._file.readline()
        if not line:
            raise ControlError("the capture server closed the control socket")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "refused"))
        return answer["result"]

    def notifications(self, closed: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(op="list", closed=closed)
        return result

    def click(self, nid: int, action: str = "default") -> None:
        self.request(op="click", id=nid, action=action)

    def close(self) -> None:
        self._file.close()
        self._sock.close()

"""The local API: newline-delimited JSON over a Unix socket private to the user.

Requests ``{"id", "method", "params"}`` get ``{"id", "result"}``; a subscribed
connection also gets ``{"event": "push", "data": {"type", "data"}}`` lines. Results
carry uni's ``errMsg`` (``<api>:ok`` or ``<api>:fail <reason>``). docs/protocol.md
describes it beside the gateway protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from .bridge import ApiError, Bridge

log = structlog.get_logger(__name__)

MAX_LINE = 1024 * 1024
#: Events a slow listener may fall behind by before it is disconnected.
MAX_QUEUE = 10_000


class SocketInUse(RuntimeError):
    pass


def ok(api: str, **fields: Any) -> dict[str, Any]:
    return {"errMsg": f"{api}:ok", **fields}


def fail(api: str, reason: str) -> dict[str, Any]:
    return {"errMsg": f"{api}:fail {reason}".rstrip()}


class ApiConnection:
    """One app connection; also a bridge Listener once it subscribes."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        # drain() then returns only once asyncio's own buffer is empty, i.e. every
        # line is in the kernel: what flushed() promises.
        writer.transport.set_write_buffer_limits(high=0)
        self._lines: deque[bytes] = deque()
        self._queued = 0  # lines ever queued
        self._written = 0  # lines ever handed to the kernel
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def send(self, obj: dict[str, Any]) -> None:
        if self._closing:
            return
        if len(self._lines) >= MAX_QUEUE:
            log.warning("a listener fell behind; disconnecting it", queued=MAX_QUEUE)
            self.close()
            return
        self._lines.append(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
        self._queued += 1
        self._wake.set()

    def deliver(self, event: dict[str, Any], msg_id: str | None = None) -> None:
        line: dict[str, Any] = {"event": "push", "data": event}
        if msg_id is not None:
            line["id"] = msg_id
        self.send(line)

    async def flushed(self) -> None:
        """Return once every line sent so far is in the kernel's socket buffer: from
        there the app reads it even if this daemon dies the next moment."""
        if self.closed or self._written >= self._queued:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._queued, waiter))
        await waiter

    def close(self) -> None:
        """Write what is queued, then close."""
        self._closing = True
        self._wake.set()

    async def _drain(self) -> None:
        try:
            while True:
                if not self._lines:
                    if self._closing:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                count = len(self._lines)
                self._writer.writelines([self._lines.popleft() for _ in range(count)])
                await self._writer.drain()
                self._written += count
                self._release()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.closed = self._closing = True
            self._written = self._queued  # nothing more will be written: stop waiting
            self._release()
            self._writer.close()

    def _release(self) -> None:
        still = []
        for target, waiter in self._waiters:
            if target <= self._written:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still

    async def wait_closed(self) -> None:
        await self._task


StatusFn = Callable[[], dict[str, Any]]
Handler = Callable[["ApiConnection", dict[str, Any]], Awaitable[dict[str, Any]]]


class LocalApiServer:
    def __init__(
        self, bridge: Bridge, path: Path, status: StatusFn, cid_timeout: float = 30.0
    ) -> None:
        self.bridge = bridge
        self.path = path
        self.status = status
        self.cid_timeout = cid_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[ApiConnection] = set()
        self._calls: set[asyncio.Task[None]] = set()
        #: The uni calls this API answers, by name.
        self._handlers: dict[str, Handler] = {
            "getPushClientId": self._get_cid,
            "onPushMessage": self._on,
            "offPushMessage": self._off,
            "createPushMessage": self._create,
            "setPushChannel": self._set_channel,
            "getAllChannels": self._channels,
            "history": self._history,
            "status": self._status,
        }

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists() or self.path.is_symlink():
            if _is_live(self.path):
                raise SocketInUse(f"another daemon is already listening on {self.path}")
            self.path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ApiConnection(writer)
        self._connections.add(conn)
        try:
            while not conn.closed:
                try:
                    line = await reader.readline()
                except (ValueError, ConnectionError):  # line over MAX_LINE, or reset
                    break
                if not line:
                    break
                await self._request(conn, line)
        finally:
            self.bridge.unsubscribe(conn)
            self._connections.discard(conn)
            conn.close()

    async def _request(self, conn: ApiConnection, line: bytes) -> None:
        try:
            req = json.loads(line)
        except json.JSONDecodeError as exc:
            conn.send({"id": None, "error": f"request is not JSON: {exc.msg}"})
            return
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            conn.send({"id": None, "error": "request must be an object with a string 'method'"})
            return
        rid, method = req.get("id"), req["method"]
        params = req.get("params") or {}
        handler = self._handlers.get(method)
        if handler is None:
            conn.send(
                {
                    "id": rid,
                    "result": fail(method, f"unknown method; known: {', '.join(self._handlers)}"),
                }
            )
            return
        if not isinstance(params, dict):
            conn.send({"id": rid, "result": fail(method, "params must be an object")})
            return
        # Slow calls (waiting for a cid, a notification) must not hold up this
        # connection's other requests, so each runs as its own task.
        task = asyncio.get_running_loop().create_task(self._run(conn, rid, method, handler, params))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _run(
        self,
        conn: ApiConnection,
        rid: Any,
        method: str,
        handler: Handler,
        params: dict[str, Any],
    ) -> None:
        try:
            result = await handler(conn, params)
        except ApiError as exc:
            result = fail(method, str(exc))
        except Exception as exc:
            log.exception("local API call failed", method=method)
            result = fail(method, f"internal error: {type(exc).__name__}")
        conn.send({"id": rid, "result": result})

    async def _get_cid(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        timeout = params.get("timeout", self.cid_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ApiError("timeout must be a number of seconds")
        cid = await self.bridge.get_push_client_id(float(timeout))
        return ok("getPushClientId", cid=cid)

    async def _on(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        await self.bridge.subscribe(conn)
        return ok("onPushMessage")

    async def _off(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        self.bridge.unsubscribe(conn)
        return ok("offPushMessage")

    async def _create(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        result = await self.bridge.create_push_message(params)
        return ok("createPushMessage", **result)

    async def _set_channel(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return ok("setPushChannel", **self.bridge.set_push_channel(params))

    async def _channels(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return ok("getAllChannels", channels=self.bridge.get_all_channels())

    async def _history(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("limit", 20)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ApiError("limit must be a whole number from 1 to 10000")
        return ok("history", entries=self.bridge.history(limit))

    async def _status(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return ok("status", **self.status())


def _is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True

"""The reference gateway: uni-push's server API over HTTP and the bridge protocol over
websocket, on one port (aiohttp), with the SQLite store behind both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ..errors import ConfigError
from ..wire import gateway as protocol
from . import errors
from . import session as wire
from .access import GatewayConfig
from .errors import UniError
from .openapi import openapi_document
from .service import GatewayService
from .store import GatewayStore

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "serve_forever"]

log = structlog.get_logger(__name__)

HELLO_TIMEOUT_S = 10.0


class Connection:
    """One registered daemon: sends its backlog, then new messages, in seq order.

    Until the backlog is sent, new messages are read back from the store with it;
    after that they are handed over directly, already encoded.
    """

    def __init__(
        self, ws: web.WebSocketResponse, store: GatewayStore, appid: str, cid: str, cursor: int
    ) -> None:
        self.ws = ws
        self.store = store
        self.appid = appid
        self.cid = cid
        self.last_sent = cursor
        self._dirty = False
        self._synced = False
        self._live: deque[tuple[int, str, str]] = deque()
        #: Direct sends (offer_now) in progress: while one waits, others queue behind it.
        self._direct = 0
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Rows may be waiting in the store; one sender runs at a time, so order holds."""
        self._dirty = True
        self._ensure_sender()

    def offer(self, seq: int, msg_id: str, body_json: str) -> None:
        """A message just committed for this cid."""
        if not self._synced:
            self.kick()
            return
        self._live.append((seq, msg_id, body_json))
        self._ensure_sender()

    async def offer_now(self, seq: int, msg_id: str, body_json: str) -> None:
        """As offer(), but with the sender idle and in sync the frame goes out at once,
        before the HTTP answer and without a task to wake (a push's hot path)."""
        idle = self._task is None or self._task.done()
        if self._synced and idle and not self._live and not self._dirty and not self._direct:
            self._direct += 1
            try:
                await self._push(seq, msg_id, body_json)
            finally:
                self._direct -= 1
            return
        self.offer(seq, msg_id, body_json)

    def _ensure_sender(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._dirty or self._live:
            if self._dirty:
                self._dirty = False
                while rows := self.store.after_raw(self.appid, self.cid, self.last_sent):
                    for row in rows:
                        if not await self._push(*row):
                            return
                self._synced = True
            while self._live:
                if not await self._push(*self._live.popleft()):
                    return

    async def _push(self, seq: int, msg_id: str, body_json: str) -> bool:
        if self.ws.closed:
            return False
        if seq > self.last_sent:
            # Moved before the send: a send that waits must not let another's cursor
            # be overwritten with a lower one when it resumes.
            self.last_sent = seq
            try:
                await self.ws.send_str(wire.push_frame_raw(seq, msg_id, body_json))
            except ConnectionError:  # the daemon went away: the row waits in the store
                return False
        return True

    async def close(self, code: int, message: str) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.ws.close(code=code, message=message.encode())


class Gateway:
    def __init__(self, config: GatewayConfig, clock: Callable[[], float] = time.time) -> None:
        config.check()
        self.config = config
        self.clock = clock
        self.store = GatewayStore(config.data_dir / "gateway.sqlite3", clock)
        self.service = GatewayService(config, self.store, clock)
        self.connections: dict[tuple[str, str], Connection] = {}
        self.app = web.Application(
            client_max_size=config.max_body_bytes, middlewares=[envelope_errors]
        )
        self.app.add_routes(
            [
                web.post("/api/{appid}/{method}", self.http_api),
                web.get(protocol.DEFAULT_PATH, self.websocket),
                web.get("/healthz", self.healthz),
                web.get("/openapi.json", self.openapi),
            ]
        )
        self.app.on_shutdown.append(self._on_shutdown)
        self._runner: web.AppRunner | None = None
        self._purger: asyncio.Task[None] | None = None
        self.port: int | None = None

    # lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = int(server.sockets[0].getsockname()[1])
        self._purger = asyncio.get_running_loop().create_task(self._purge_loop())
        log.info("gateway listening", host=self.config.host, port=self.port)

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        self.store.close()

    @property
    def http_url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def _on_shutdown(self, app: web.Application) -> None:
        for conn in list(self.connections.values()):
            await conn.close(1001, "gateway shutting down")

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(60)
            purged, forgotten = self.service.purge(self.connections.keys())
            if purged:
                log.info("purged expired messages", count=purged)
            if forgotten:
                log.info("forgot cids unseen for 90 days", count=forgotten)

    def online(self, appid: str, cid: str) -> bool:
        return (appid, cid) in self.connections

    # HTTP API -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def http_api(self, request: web.Request) -> web.Response:
        appid = request.match_info["appid"]
        method = request.match_info["method"]
        try:
            self.service.authorize(appid, request.headers.get("Authorization", ""))
            self.service.admit(appid)
            body = await _json_body(request)
            data = await self.call(appid, method, body)
        except UniError as exc:
            headers = {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return web.json_response(exc.envelope(), status=exc.status, headers=headers)
        return web.json_response(data)

    async def call(self, appid: str, method: str, body: Any) -> dict[str, Any]:
        """Run one server method and hand over what it committed for online daemons."""
        outcome = self.service.call(appid, method, body, self.online)
        for d in outcome.deliveries:
            conn = self.connections.get((appid, d.cid))
            if conn is not None:
                await conn.offer_now(d.seq, d.msg_id, d.body_json)
        return outcome.answer

    async def send_message(self, appid: str, body: Any) -> dict[str, Any]:
        return await self.call(appid, "sendMessage", body)

    # websocket ------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # No per-message compression: frames are small, and deflate state costs ~100 KB
        # per connection (620 MB for 5,000 daemons against 126 MB without).
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_FRAME_BYTES, compress=False)
        await ws.prepare(request)
        sess = wire.ServerSession(self.config.client_token_for, peer=request.remote or "")
        conn: Connection | None = None
        try:
            msg = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await ws.close(code=protocol.CloseCode.BAD_HELLO, message=b"no hello")
            return ws
        try:
            while msg.type not in (
                WSMsgType.CLOSE,
                WSMsgType.CLOSING,
                WSMsgType.CLOSED,
                WSMsgType.ERROR,
            ):
                data = msg.data if msg.type == WSMsgType.TEXT else b"binary"
                for event in sess.receive(data):
                    conn = await self._handle(ws, sess, conn, event)
                if ws.closed:
                    break
                msg = await ws.receive()
        finally:
            if conn is not None:
                self.store.touch(conn.appid, conn.cid)
                if self.connections.get((conn.appid, conn.cid)) is conn:
                    del self.connections[(conn.appid, conn.cid)]
                log.info("daemon disconnected", appid=conn.appid, cid=conn.cid)
        return ws

    async def _handle(
        self,
        ws: web.WebSocketResponse,
        sess: wire.ServerSession,
        conn: Connection | None,
        event: wire.Event,
    ) -> Connection | None:
        if isinstance(event, wire.Register):
            cursor = self.service.register(event)
            if isinstance(cursor, wire.Close):  # the cid's current connection stays
                await ws.send_str(cursor.frame)
                await ws.close(code=cursor.code, message=cursor.reason.encode())
                return None
            key = (event.appid, event.cid)
            previous = self.connections.get(key)
            conn = Connection(ws, self.store, event.appid, event.cid, cursor)
            self.connections[key] = conn
            if previous is not None:
                await previous.close(protocol.CloseCode.REPLACED, "replaced by a newer connection")
            backlog = self.store.pending_count(event.appid, event.cid)
            await ws.send_str(sess.welcome(cursor, backlog))
            log.info("daemon registered", appid=event.appid, cid=event.cid, cursor=cursor)
            conn.kick()
        elif isinstance(event, wire.Acked):
            assert conn is not None
            if (refused := self.service.ack(conn.appid, conn.cid, event.seq)) is not None:
                await ws.send_str(refused)
        elif isinstance(event, wire.Receipted):
            assert conn is not None
            self.service.receipt(conn.appid, conn.cid, event)
        elif isinstance(event, wire.Reply):
            log.warning("refused a frame from a daemon", frame=event.frame)
            await ws.send_str(event.frame)
        else:
            await ws.send_str(event.frame)
            await ws.close(code=event.code, message=event.reason.encode())
        return conn


@web.middleware
async def envelope_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Whatever goes wrong under /api/, the caller gets uni's envelope, not a text page."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = errors.NOT_FOUND if exc.status in (404, 405) else errors.PARAMS
        err = UniError(
            code, f"{exc.reason}: POST /api/{{appId}}/{{method}} with a JSON body", exc.status
        )
        return web.json_response(err.envelope(), status=exc.status)
    except Exception:
        log.exception("gateway request failed", path=request.path)
        err = UniError(errors.SERVICE, "internal error in the gateway; see its log", 500)
        return web.json_response(err.envelope(), status=500)


async def _json_body(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise UniError(
            errors.PARAMS, f"request body larger than {request.app._client_max_size} bytes"
        ) from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UniError(errors.PARAMS, f"request body is not JSON: {exc}") from None


async def serve_forever(config: GatewayConfig, stop: asyncio.Event) -> None:
    gateway = Gateway(config)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await gateway.stop()

"""The reference gateway: uni-push's server API over HTTP and the bridge protocol over
websocket, on one port (aiohttp), with the SQLite store behind both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from .. import protocol
from . import session as wire
from .send import UniError, parse_send_message
from .store import GatewayStore

log = structlog.get_logger(__name__)

#: How long a ttl=-1 (online only) message waits for its acknowledgement.
ONLINE_ONLY_GRACE_S = 60.0
HELLO_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024


class ConfigError(ValueError):
    """The gateway cannot start as configured; the text says which key and why."""


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    data_dir: Path = Path(".")
    #: Bearer secret for the HTTP API; required to listen beyond loopback.
    server_secret: str | None = None
    #: Token daemons present in hello; required to listen beyond loopback.
    client_token: str | None = None

    def check(self) -> None:
        if is_loopback(self.host):
            return
        missing = [k for k in ("server_secret", "client_token") if getattr(self, k) is None]
        if missing:
            raise ConfigError(
                f"host: {self.host!r} is not a loopback address; set "
                f"{' and '.join(missing)} to listen on it"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Connection:
    """One registered daemon: sends its backlog and new messages in seq order."""

    def __init__(
        self, ws: web.WebSocketResponse, store: GatewayStore, appid: str, cid: str, cursor: int
    ) -> None:
        self.ws = ws
        self.store = store
        self.appid = appid
        self.cid = cid
        self.last_sent = cursor
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """New rows may be waiting; one flusher runs at a time, so order holds."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._dirty:
            self._dirty = False
            while True:
                rows = self.store.after(self.appid, self.cid, self.last_sent)
                if not rows:
                    break
                for seq, msg_id, body in rows:
                    if self.ws.closed:
                        return
                    await self.ws.send_str(wire.push_frame(seq, msg_id, body))
                    self.last_sent = seq

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
        self.connections: dict[tuple[str, str], Connection] = {}
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.add_routes(
            [
                web.post("/api/{appid}/{method}", self.http_api),
                web.get(protocol.DEFAULT_PATH, self.websocket),
                web.get("/healthz", self.healthz),
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
            purged = self.store.purge_expired()
            if purged:
                log.info("purged expired messages", count=purged)

    # HTTP API -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def http_api(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
            body = await _json_body(request)
            appid = request.match_info["appid"]
            method = request.match_info["method"]
            if method != "sendMessage":
                raise UniError(404, f"method {method} is not supported by this gateway", 404)
            answer = await self.send_message(appid, body)
        except UniError as exc:
            return web.json_response(exc.envelope(), status=exc.status)
        return web.json_response(answer)

    def _authorize(self, request: web.Request) -> None:
        secret = self.config.server_secret
        if secret is None:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
            raise UniError(401, "unauthorized: send Authorization: Bearer <server_secret>", 401)

    async def send_message(self, appid: str, body: Any) -> dict[str, Any]:
        req = parse_send_message(body)
        store = self.store
        if req.request_id is not None:
            earlier = store.answer_for(appid, req.request_id)
            if earlier is not None:
                log.info("dropped a repeated request_id", request_id=req.request_id)
                return earlier
        taskid = "RASS_" + secrets.token_hex(12)
        message = {**req.message, "taskid": taskid}
        statuses: dict[str, str] = {}
        online: list[Connection] = []
        store.begin()
        try:
            for cid in req.cids:
                conn = self.connections.get((appid, cid))
                if not store.known(appid, cid) or (req.ttl_ms == -1 and conn is None):
                    statuses[cid] = "successed_ignore"
                    continue
                ttl_s = ONLINE_ONLY_GRACE_S if req.ttl_ms == -1 else req.ttl_ms / 1000
                store.add_message(appid, cid, secrets.token_hex(16), taskid, message, ttl_s)
                statuses[cid] = "successed_online" if conn else "successed_offline"
                if conn is not None:
                    online.append(conn)
            answer = {"errCode": 0, "errMsg": "", "data": {taskid: statuses}}
            if req.request_id is not None:
                store.remember_answer(appid, req.request_id, answer)
            store.commit()
        except BaseException:
            store.rollback()
            raise
        for conn in online:
            conn.kick()
        return answer

    # websocket ------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_FRAME_BYTES, heartbeat=None)
        await ws.prepare(request)
        sess = wire.ServerSession(self.config.client_token)
        conn: Connection | None = None
        try:
            first = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await ws.close(code=protocol.CloseCode.BAD_HELLO, message=b"no hello")
            return ws
        msg = first
        try:
            while True:
                if msg.type in (
                    WSMsgType.CLOSE,
                    WSMsgType.CLOSING,
                    WSMsgType.CLOSED,
                    WSMsgType.ERROR,
                ):
                    break
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
            cursor = self.store.register(event.appid, event.cid, event.acked)
            key = (event.appid, event.cid)
            previous = self.connections.get(key)
            conn = Connection(ws, self.store, event.appid, event.cid, cursor)
            self.connections[key] = conn
            if previous is not None:
                await previous.close(protocol.CloseCode.REPLACED, "replaced by a newer connection")
            await ws.send_str(sess.welcome(cursor))
            log.info("daemon registered", appid=event.appid, cid=event.cid, cursor=cursor)
            conn.kick()
        elif isinstance(event, wire.Acked):
            assert conn is not None
            self.store.ack(conn.appid, conn.cid, event.seq)
        elif isinstance(event, wire.Receipted):
            log.debug("receipt", id=event.id, receipt=event.event)
        elif isinstance(event, wire.Reply):
            log.warning("refused a frame from a daemon", frame=event.frame)
            await ws.send_str(event.frame)
        else:
            await ws.send_str(event.frame)
            await ws.close(code=event.code, message=event.reason.encode())
        return conn


async def _json_body(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise UniError(400, f"request body larger than {MAX_BODY_BYTES} bytes") from None
    try:
        return json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UniError(400, f"request body is not JSON: {exc}") from None


async def serve_forever(config: GatewayConfig, stop: asyncio.Event) -> None:
    gateway = Gateway(config)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await gateway.stop()

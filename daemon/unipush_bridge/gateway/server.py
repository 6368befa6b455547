"""The reference gateway: uni-push's server API over HTTP and the bridge protocol over
websocket, on one port (aiohttp), with the SQLite store behind both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ..errors import ConfigError
from ..wire import gateway as protocol
from . import errors, methods
from . import session as wire
from .access import GatewayConfig
from .errors import UniError
from .openapi import openapi_document
from .ratelimit import RateLimiter
from .send import MAX_DEVICES, Limits, SendRequest, parse_send_message
from .store import GatewayStore

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "serve_forever"]

log = structlog.get_logger(__name__)

#: How long a ttl=-1 (online only) message waits for its acknowledgement.
ONLINE_ONLY_GRACE_S = 60.0
HELLO_TIMEOUT_S = 10.0
#: A cid this gateway never registered for the appId: nothing stored.
INVALID = "target user is invalid"
#: Past the 500-device cap, or offline with an online-only ttl: nothing stored.
IGNORED = "successed_ignore"


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
            await self.ws.send_str(wire.push_frame_raw(seq, msg_id, body_json))
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
        self.limits = Limits.for_mode(config.strict_limits)
        self.store = GatewayStore(config.data_dir / "gateway.sqlite3", clock)
        self.connections: dict[tuple[str, str], Connection] = {}
        self.api_rate = RateLimiter(config.rate_limit, config.rate_burst, clock)
        per_minute = config.broadcast_per_minute
        self.broadcast_rate = RateLimiter(per_minute / 60, per_minute, clock)
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
            purged = self.store.purge_expired()
            if purged:
                log.info("purged expired messages", count=purged)

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
            self._authorize(request, appid)
            if not self.api_rate.allow(appid):
                raise UniError(
                    errors.RATE,
                    "too many requests for this appId; slow down",
                    429,
                    retry_after=self.api_rate.retry_after(appid),
                )
            body = await _json_body(request)
            data = await self.call(appid, method, body)
        except UniError as exc:
            headers = {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return web.json_response(exc.envelope(), status=exc.status, headers=headers)
        return web.json_response(data)

    async def call(self, appid: str, method: str, body: Any) -> dict[str, Any]:
        """Run one server method; the answer is uni's envelope."""
        if method == "sendMessage":
            return await self.send_message(appid, body)
        if method in methods.NOT_SUPPORTED:
            raise UniError(
                errors.PARAMS,
                f"{method} is not supported by this gateway: {methods.NOT_SUPPORTED[method]}",
            )
        handler = methods.METHODS.get(method)
        if handler is None:
            raise UniError(errors.NOT_FOUND, f"{method} is not a uni-push server method", 404)
        ctx = methods.Context(appid, self.store, self.online, self.clock)
        with self.store.transaction():
            data = handler(ctx, body)
        return {"errCode": 0, "errMsg": "success", "data": data}

    def _authorize(self, request: web.Request, appid: str) -> None:
        try:
            secret = self.config.secrets_for(appid).server_secret
        except LookupError:
            raise UniError(errors.NOT_FOUND, f"appId {appid} is not served here", 404) from None
        if secret is None:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
            raise UniError(
                errors.AUTH, "unauthorized: send Authorization: Bearer <server_secret>", 401
            )

    async def send_message(self, appid: str, body: Any) -> dict[str, Any]:
        req = parse_send_message(body, self.limits)
        store = self.store
        if req.request_id is not None:
            earlier = store.answer_for(appid, req.request_id)
            if earlier is not None:
                log.info("dropped a repeated request_id", request_id=req.request_id)
                return earlier
        broadcast = req.target.kind == "broadcast"
        if broadcast and not self.broadcast_rate.allow(appid):
            raise UniError(
                errors.BROADCAST_RATE,
                f"broadcasts are limited to {self.config.broadcast_per_minute} a minute",
                429,
                retry_after=self.broadcast_rate.retry_after(appid),
            )
        stamp = datetime.fromtimestamp(self.clock()).strftime("%m%d")
        taskid = f"{'RASA' if broadcast else 'RASL'}_{stamp}_{secrets.token_hex(16)}"
        message = json.dumps({**req.message, "taskid": taskid}, ensure_ascii=False)
        online: list[tuple[Connection, int, str]] = []
        with store.transaction():
            groups = self._resolve(appid, req)
            statuses: dict[str, str] = {}
            reached = 0
            for cids in groups.values():
                for cid in cids:
                    if cid in statuses:
                        continue
                    if not broadcast and reached >= MAX_DEVICES:
                        statuses[cid] = IGNORED  # uni-push ignores devices past 500
                        continue
                    statuses[cid] = self._store_for(appid, cid, req, taskid, message, online)
                    reached += statuses[cid] != INVALID
            stored = sum(s.startswith("successed_") and s != IGNORED for s in statuses.values())
            store.add_task(appid, taskid, req.group_name, len(statuses), stored)
            answer = {
                "errCode": 0,
                "errMsg": "",
                "data": _answer_data(req, taskid, groups, statuses),
            }
            if req.request_id is not None:
                store.remember_answer(appid, req.request_id, answer)
        for conn, seq, msg_id in online:
            await conn.offer_now(seq, msg_id, message)
        return answer

    def _resolve(self, appid: str, req: SendRequest) -> dict[str, list[str]]:
        """Target -> cids, grouped by alias for alias targets (uni answers per alias)."""
        kind, values, store = req.target.kind, list(req.target.values), self.store
        if kind == "push_clientid":
            return {"": values}
        if kind == "broadcast":
            return {"": store.all_cids(appid)}
        if kind == "getui_alias":
            return {alias: store.cids_of_alias(appid, alias) for alias in values}
        if kind == "getui_custom_tag":
            return {"": store.cids_with_tag(appid, values[0])}
        if not store.has_uniid(appid):
            raise UniError(
                errors.ILLEGAL,
                f"illegal params: {kind} targets need a uni-id mapping (uniCloud's "
                "uni-id-device / opendb-device tables), and none is registered for this "
                "appId: register one with bindUniIdDevice, or target push_clientid",
            )
        resolve = {
            "user_id": store.cids_for_users,
            "user_tag": store.cids_for_user_tags,
            "device_id": store.cids_for_devices,
        }[kind]
        return {"": resolve(appid, values)}

    def _store_for(
        self,
        appid: str,
        cid: str,
        req: SendRequest,
        taskid: str,
        message: str,
        online: list[tuple[Connection, int, str]],
    ) -> str:
        if not self.store.known(appid, cid):
            return INVALID
        conn = self.connections.get((appid, cid))
        online_only = req.ttl_ms <= 0  # -1, and 0 (no time to wait at all), mean online only
        if online_only and conn is None:
            return IGNORED
        ttl_s = ONLINE_ONLY_GRACE_S if online_only else req.ttl_ms / 1000
        msg_id = secrets.token_hex(16)
        seq = self.store.add_message(appid, cid, msg_id, taskid, message, ttl_s)
        if conn is None:
            return "successed_offline"
        online.append((conn, seq, msg_id))
        return "successed_online"

    # websocket ------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # No per-message compression: frames are small, and deflate state costs ~100 KB
        # per connection (620 MB for 5,000 daemons against 126 MB without).
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_FRAME_BYTES, compress=False)
        await ws.prepare(request)
        sess = wire.ServerSession(self.config.client_token_for)
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
            cursor = self.store.register(event.appid, event.cid, event.acked)
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
            self.store.ack(conn.appid, conn.cid, event.seq)
        elif isinstance(event, wire.Receipted):
            assert conn is not None
            if event.taskid:
                self.store.count_receipt(conn.appid, event.taskid, event.event)
        elif isinstance(event, wire.Reply):
            log.warning("refused a frame from a daemon", frame=event.frame)
            await ws.send_str(event.frame)
        else:
            await ws.send_str(event.frame)
            await ws.close(code=event.code, message=event.reason.encode())
        return conn


def _answer_data(
    req: SendRequest, taskid: str, groups: dict[str, list[str]], statuses: dict[str, str]
) -> dict[str, Any]:
    """uni's sendMessage data: per cid, per alias and cid, or the task id for a broadcast."""
    if req.target.kind == "broadcast":
        return {"taskid": taskid}
    if req.target.kind == "getui_alias":
        return {taskid: {alias: {c: statuses[c] for c in cids} for alias, cids in groups.items()}}
    if req.target.kind == "push_clientid":
        return {taskid: {c: statuses[c] for c in req.target.values}}
    return {taskid: statuses}


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

"""The reference gateway: uni-push's server API over HTTP and the bridge protocol over
websocket, on one port (aiohttp), with the SQLite store behind both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

if sys.platform != "win32":
    import resource

from ..errors import ConfigError
from ..wire import gateway as protocol
from . import errors
from . import session as wire
from .access import GatewayConfig, source_of
from .acks import DeferredAcks
from .cluster import ClusterLink, start_cluster
from .errors import UniError
from .openapi import openapi_document
from .ratelimit import RateLimiter
from .send import MAX_DEPTH, check_json_value
from .service import GatewayService
from .storeapi import Store, open_store

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "serve_forever"]

log = structlog.get_logger(__name__)

HELLO_TIMEOUT_S = 10.0
#: How long a push's direct hand-over waits for a daemon's link to drain before it
#: leaves the rest to the connection's sender (tests/integration/test_slow_daemon.py).
DIRECT_DRAIN_S = 0.05
#: How many of those waits one push (or one notice from another node) spends at most;
#: the rest of its daemons get it by their senders. Daemons that each fill their link
#: just as a broadcast reaches them cost its answer this many waits, not one each.
MAX_DRAIN_WAITS = 4
#: How long closing a daemon's link (replaced, the store away) waits for the close
#: handshake before it cuts the link.
CLOSE_WAIT_S = 2.0
#: Expired messages and cids unseen for 90 days are removed this often.
PURGE_EVERY_S = 60.0
#: The close reason when the store fails under a daemon's session (code 1011).
STORE_AWAY = "gateway store unavailable; reconnect"


def text_frame(text: str) -> bytes:
    """A websocket text frame as a server sends it (RFC 6455 5.2): final, unmasked,
    uncompressed (the gateway's links negotiate no compression)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + data
    return struct.pack("!BBQ", 0x81, 127, n) + data


class Outbox:
    """Push frames handed over directly in one loop turn, written to each daemon's link
    in one write when the turn ends, before its commit (the store's before_commit hook;
    a loop callback where there is no group commit). Sixteen requests of a turn to one
    daemon made sixteen send() calls, each waking the daemon: the largest single cost
    of a sendMessage after SQLite (issue 17 item 5)."""

    def __init__(self) -> None:
        self._due: dict[Connection, None] = {}
        self._handle: asyncio.Handle | None = None

    def add(self, conn: Connection) -> None:
        self._due[conn] = None
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        due, self._due = self._due, {}
        for conn in due:
            conn.write_out()


class Connection:
    """One registered daemon: sends its backlog, then new messages, in seq order.

    Until the backlog is sent, new messages are read back from the store with it;
    after that they are handed over directly, already encoded: into the outbox, which
    writes a turn's frames to the link at once (a stand-in socket with no transport,
    in tests, gets each by send_str instead).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        store: Store,
        appid: str,
        cid: str,
        cursor: int,
        link: web.RequestHandler | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.ws = ws
        #: The HTTP connection under the websocket: whether writing to it is paused,
        #: and its transport to abort (None: a test's stand-in socket).
        self._link = link
        self.store = store
        self.appid = appid
        self.cid = cid
        self.last_sent = cursor
        self._dirty = False
        self._synced = False
        self._live: deque[tuple[int, str, str]] = deque()
        self._outbox = outbox
        #: Push frames in the outbox, in seq order (last_sent already counts them).
        self._out: list[str] = []
        #: Direct sends (offer_now) in progress: while one waits, others queue behind it.
        self._direct = 0
        self._task: asyncio.Task[None] | None = None
        #: Set once the welcome is sent (or could not be): a newer registration on
        #: another node closes this one after its welcome, never before it.
        self.welcomed = asyncio.Event()

    def paused(self) -> bool:
        """The daemon is not reading what we send: the socket's buffers are full."""
        return self._link is not None and self._link.writing_paused

    def kick(self) -> None:
        """Rows may be waiting in the store; one sender runs at a time, so order holds."""
        self._dirty = True
        self._ensure_sender()

    def resync(self) -> None:
        """Rows below a new message may be waiting in the store (another gateway
        node's, issue 17): read them before handing anything over directly."""
        self._synced = False
        self._live.clear()  # committed, so read back with the rest
        self.kick()

    def offer(self, seq: int, msg_id: str, body_json: str) -> None:
        """A message just committed for this cid. To a daemon that is not reading, it
        waits in the store, not here: read back when the link drains, so memory
        does not grow with every push to a link that never will."""
        if not self._synced or self.paused():
            self.resync()
            return
        self._live.append((seq, msg_id, body_json))
        self._ensure_sender()

    def offer_after(self, before: int, seq: int, msg_id: str, body_json: str) -> None:
        """A message another node committed, with the cid's seq before it: handed over
        as it is when that one is sent or queued here, else read with the others."""
        top = self._live[-1][0] if self._live else self.last_sent
        if self._synced and before <= top:
            self.offer(seq, msg_id, body_json)
        else:
            self.resync()

    async def offer_now(self, before: int, seq: int, msg_id: str, body_json: str) -> bool:
        """As offer_after(), but with the sender idle and in sync and ``before`` sent,
        the frame goes out at once, before the HTTP answer and without a task to wake
        (a push's hot path). ``before`` 0: the store commits in seq order (SQLite).
        The frame is written at once; its drain is waited for DIRECT_DRAIN_S at most,
        so a daemon that stopped reading holds up neither the answer nor the push's
        other targets (its next messages go by the sender, which waits alone). True:
        the drain was waited for in vain."""
        idle = self._task is None or self._task.done()
        if (
            not self.paused()
            and self._synced
            and idle
            and not self._live
            and not self._dirty
            and not self._direct
            and before <= self.last_sent
        ):
            if self._outbox is not None and self._transport() is not None:
                if seq > self.last_sent:  # as _push: moved before the write
                    self.last_sent = seq
                    self._out.append(wire.push_frame_raw(seq, msg_id, body_json))
                    self._outbox.add(self)
                return False
            self._direct += 1
            try:
                # send_str writes an uncompressed frame before it waits for the drain
                # (aiohttp's writer), so a timeout here cuts only that wait.
                async with asyncio.timeout(DIRECT_DRAIN_S):
                    await self._push(seq, msg_id, body_json)
            except TimeoutError:
                log.info("a daemon is not reading its link", appid=self.appid, cid=self.cid)
                return True
            except Exception:
                # The message is committed: its answer must not turn into an error
                # (a sender would retry and store it again), nor the push's other
                # targets miss theirs. The daemon reconnects and resumes from its cursor.
                log.exception("could not hand a push over; cutting the link", cid=self.cid)
                self.cut()
            finally:
                self._direct -= 1
            return False
        self.offer_after(before, seq, msg_id, body_json)
        return False

    def _transport(self) -> asyncio.Transport | None:
        return self._link.transport if self._link is not None else None

    def write_out(self) -> None:
        """The frames waiting in the outbox, in one write. A link that closed meanwhile
        gets none: the rows wait in the store for the daemon's next hello, as a send
        on a closed link leaves them. A write that fails cuts the link (see offer_now)."""
        frames, self._out = self._out, []
        transport = self._transport()
        if not frames or transport is None or self.ws.closed or transport.is_closing():
            return
        try:
            transport.write(b"".join([text_frame(f) for f in frames]))
        except Exception:
            log.exception("could not hand a push over; cutting the link", cid=self.cid)
            self.cut()

    def _ensure_sender(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        """The store failing under a read (Redis restarting) closes the link as the
        session does, so the daemon resumes from its cursor: a sender that just died
        left the rows it had not read waiting for the next push to this cid. Nothing
        goes before the welcome: a push committed while the hello is handled (its
        replaced connection closing, its registration awaiting Redis) would be refused
        by the daemon and then covered by its next ack."""
        await self.welcomed.wait()
        try:
            await self._send_all()
        except Exception:
            log.exception("could not read a daemon's messages; closing its link", cid=self.cid)
            await self.ws.close(code=1011, message=STORE_AWAY.encode())

    async def _send_all(self) -> None:
        while self._dirty or self._live:
            if self._dirty:
                self._dirty = False
                while rows := await self.store.after_raw(self.appid, self.cid, self.last_sent):
                    for row in rows:
                        if not await self._push(*row):
                            return
                self._synced = True
            while self._live:
                if not await self._push(*self._live.popleft()):
                    return

    async def _push(self, seq: int, msg_id: str, body_json: str) -> bool:
        self.write_out()  # the outbox's frames are earlier seqs: they go first
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

    async def replaced(self) -> None:
        """A newer registration of the cid (here, or on another node) holds it now."""
        await self.close(protocol.CloseCode.REPLACED, "replaced by a newer connection")

    async def close(self, code: int, message: str) -> None:
        """The close handshake waits CLOSE_WAIT_S at most: a daemon that stopped
        reading may never take the close frame, and its link is then cut."""
        await self.welcomed.wait()
        self.write_out()
        if self._task is not None:
            self._task.cancel()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self.ws.close(code=code, message=message.encode())
        except TimeoutError:
            self.cut()

    def cut(self) -> None:
        """Drop the link without a close handshake (the daemon reconnects)."""
        transport = self._link.transport if self._link is not None else None
        if transport is not None:
            transport.abort()


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is the wall clock (timestamps that are stored or shown);
        ``monotonic`` measures every duration (rate limits), so a clock step is harmless."""
        config.check()
        self.config = config
        self.clock = clock
        self.store = open_store(config, clock, monotonic)  # SQLite, or Redis (issue 17)
        self.service = GatewayService(config, self.store, clock, monotonic)
        per_minute = config.auth_failures_per_minute
        self.auth_failures = RateLimiter(per_minute / 60, per_minute, monotonic)
        self.connections: dict[tuple[str, str], Connection] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.acks = DeferredAcks(self.service.ack_many, self.store_failed)
        self.outbox = Outbox()
        self.store.before_commit(self.outbox.flush)  # the push leaves before the commit
        self.edge = Edge(config, monotonic)
        self.app = web.Application(
            client_max_size=config.max_body_bytes,
            middlewares=[envelope_errors, self.edge.middleware],
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
        self._listener: asyncio.Server | None = None
        self._purger: asyncio.Task[None] | None = None
        self._cluster: ClusterLink | None = None
        self.port: int | None = None

    # lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.edge.install(loop)
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.config.keepalive_timeout_s,
            logger=_HttpLog(self.edge.warn),
        )
        await self._runner.setup()
        assert self._runner.server is not None
        # Our own listener instead of a TCPSite: each connection goes through the
        # edge's guard (connection cap, request-head deadline) on its way to aiohttp.
        self._listener = await loop.create_server(
            self.edge.protocol_factory(self._runner.server),
            self.config.host,
            self.config.port,
            backlog=128,
        )
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._purger = loop.create_task(self._purge_loop())
        self._cluster = await start_cluster(self)  # other nodes' pushes (issue 17)
        log.info("gateway listening", host=self.config.host, port=self.port)

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
        if (link := self._cluster) is not None:
            await link.stop()
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.edge.uninstall()
        await self.acks.close()
        await self.store.close()

    @property
    def http_url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def _on_shutdown(self, app: web.Application) -> None:
        """All at once: each close may wait CLOSE_WAIT_S for a daemon that stopped
        reading, and a stop must not take that long once per such daemon."""
        closes = [conn.close(1001, "gateway shutting down") for conn in self.connections.values()]
        await asyncio.gather(*closes, return_exceptions=True)

    async def _purge_loop(self) -> None:
        """A purge that fails (Redis restarting, the disk full) is tried again at the
        next round: the loop once ended at the first error, and nothing was purged
        again until the gateway restarted."""
        while True:
            await asyncio.sleep(PURGE_EVERY_S)
            try:
                purged, forgotten = await self.service.purge(list(self.connections))
            except Exception as exc:
                log.warning("the periodic purge failed; trying again later", error=str(exc))
                continue
            if purged:
                log.info("purged expired messages", count=purged)
            if forgotten:
                log.info("forgot cids unseen for 90 days", count=forgotten)

    async def online(self, appid: str, cids: list[str]) -> set[str]:
        """service.Online: this node's connections, then the cluster's presence for
        the others (one round trip for all of them, issue 17)."""
        here = {c for c in cids if (appid, c) in self.connections}
        link = self._cluster
        if link is None or len(here) == len(cids):
            return here
        return here | await link.online(appid, [c for c in cids if c not in here])

    # HTTP API -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def http_api(self, request: web.Request) -> web.Response:
        appid = request.match_info["appid"]
        method = request.match_info["method"]
        source = source_of(request.remote)
        try:
            self._authorize(appid, request.headers.get("Authorization", ""), source)
            self.service.admit(appid, source)
            body = await _json_body(request, self.config.body_timeout_s)
            data = await self.call(appid, method, body)
        except UniError as exc:
            headers = {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return web.json_response(exc.envelope(), status=exc.status, headers=headers)
        return web.json_response(data)

    def _authorize(self, appid: str, authorization: str, source: str) -> None:
        """The service's check, with failures (a wrong secret, an unknown appId) limited
        per source address: past the limit every call from it is refused unchecked, so
        secrets and appIds cannot be guessed at speed."""
        limiter = self.auth_failures
        if limiter.blocked(source):
            raise UniError(
                errors.RATE,
                f"too many failed authentications from this address (more than "
                f"{self.config.auth_failures_per_minute} a minute); wait and retry",
                429,
                retry_after=limiter.retry_after(source),
            )
        try:
            authorization.encode()
        except UnicodeEncodeError:
            limiter.allow(source)
            raise UniError(
                errors.PARAMS, "Authorization header: must be text (ASCII or UTF-8)"
            ) from None
        try:
            self.service.authorize(appid, authorization)
        except UniError as exc:
            if exc.status in (401, 404):
                limiter.allow(source)
            raise

    async def call(self, appid: str, method: str, body: Any) -> dict[str, Any]:
        """Run one server method, hand what it stored to the online daemons, and answer
        once it is committed. The frames leave before the commit (the commit of this
        loop turn's requests together, GroupCommit): the daemon records the message
        while we write ours, and the answer still waits for the commit. What a crash
        between the two does is in docs/architecture.md's crash table."""
        outcome = await self.service.call(appid, method, body, self.online)
        pushes = ((d.cid, d.before, d.seq, d.msg_id, d.body_json) for d in outcome.deliveries)
        await self.hand_over(appid, pushes)
        self.kick(appid, outcome.recheck)
        await self.store.synced()
        return outcome.answer

    def kick(self, appid: str, cids: Iterable[str]) -> None:
        """The connections here of these cids read the store after their cursors."""
        for cid in cids:
            if (conn := self.connections.get((appid, cid))) is not None:
                conn.kick()

    async def hand_over(self, appid: str, pushes: Iterable[tuple[str, int, int, str, str]]) -> None:
        """Committed messages (cid, the cid's seq before, seq, id, body) to the daemons
        connected here: directly while at most MAX_DRAIN_WAITS drains were waited for
        in vain, then by each daemon's sender."""
        waits = 0
        for cid, before, seq, msg_id, body in pushes:
            if (conn := self.connections.get((appid, cid))) is None:
                continue
            if waits < MAX_DRAIN_WAITS:
                if await conn.offer_now(before, seq, msg_id, body):
                    waits += 1
            else:
                conn.offer_after(before, seq, msg_id, body)

    async def send_message(self, appid: str, body: Any) -> dict[str, Any]:
        return await self.call(appid, "sendMessage", body)

    # websocket ------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # No per-message compression: frames are small, and deflate state costs ~100 KB
        # per connection (620 MB for 5,000 daemons against 126 MB without).
        # heartbeat: aiohttp pings only a link silent that long (any frame, the daemon's
        # own pings included, puts it off), so a live daemon costs no pings.
        ws = web.WebSocketResponse(
            max_msg_size=protocol.MAX_FRAME_BYTES,
            compress=False,
            heartbeat=self.config.link_timeout_s,
        )
        await ws.prepare(request)
        sess = wire.ServerSession(self.config.client_token_for, peer=request.remote or "")
        # Until its hello registers, the link is as idle as a keep-alive: the oldest
        # gives way at the connection cap (else links that never say hello, opened
        # again every HELLO_TIMEOUT_S, kept every newcomer out). Registered, it is busy.
        self.edge.busy(request.protocol, False)

        conn: Connection | None = None
        try:
            msg = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await ws.close(code=protocol.CloseCode.BAD_HELLO, message=b"no hello")
            self.edge.busy(request.protocol, True)  # as the middleware left it
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
                    conn = await self._handle(ws, sess, conn, event, request.protocol)
                if ws.closed:
                    break
                msg = await ws.receive()
        except Exception:  # the store failed (Redis away, a full disk): it reconnects
            log.exception("daemon session failed; closing it", cid=conn and conn.cid)
            await ws.close(code=1011, message=STORE_AWAY.encode())
        finally:
            if conn is None:  # never registered: as the middleware left it
                self.edge.busy(request.protocol, True)
            if conn is not None:  # first: a failed touch must not leave it "online"
                if self.connections.get((conn.appid, conn.cid)) is conn:
                    del self.connections[(conn.appid, conn.cid)]
                with contextlib.suppress(Exception):  # last_seen is best effort
                    await self.acks.flush_one(conn.appid, conn.cid)
                    await self.store.touch(conn.appid, conn.cid)
                log.info("daemon disconnected", appid=conn.appid, cid=conn.cid)
        return ws

    def store_failed(self, appid: str, cid: str) -> None:
        """As a failure inside the session: the link closes and the daemon resumes from
        its cursor, so nothing waits on a notice the store's outage swallowed."""
        if (conn := self.connections.get((appid, cid))) is not None:
            task = asyncio.get_running_loop().create_task(conn.close(1011, STORE_AWAY))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _handle(
        self,
        ws: web.WebSocketResponse,
        sess: wire.ServerSession,
        conn: Connection | None,
        event: wire.Event,
        http: web.RequestHandler,
    ) -> Connection | None:
        if isinstance(event, wire.Register):
            await self.acks.flush_one(event.appid, event.cid)  # the cursor it resumes from
            cursor = await self.service.register(event)
            if isinstance(cursor, wire.Close):  # the cid's current connection stays
                await ws.send_str(cursor.frame)
                await ws.close(code=cursor.code, message=cursor.reason.encode())
                return None
            key = (event.appid, event.cid)
            previous = self.connections.get(key)
            conn = Connection(ws, self.store, event.appid, event.cid, cursor, http, self.outbox)
            self.connections[key] = conn
            try:
                if previous is not None:
                    await previous.replaced()
                backlog = await self.store.pending_count(event.appid, event.cid)
                await ws.send_str(sess.welcome(cursor, backlog, self.store.now()))
            finally:
                conn.welcomed.set()
            link = self._cluster
            if link is not None and link.superseded(event.appid, event.cid):
                # a newer registration's notice came while ours awaited its commit
                if self.connections.get(key) is conn:
                    del self.connections[key]
                await conn.replaced()
                return None
            log.info("daemon registered", appid=event.appid, cid=event.cid, cursor=cursor)
            self.edge.busy(http, True)  # a daemon: never closed for a newcomer
            conn.kick()
        elif isinstance(event, wire.Acked):
            assert conn is not None
            if event.seq <= conn.last_sent:  # sent, so issued: applied with others soon
                self.acks.add(conn.appid, conn.cid, event.seq)
            elif (refused := await self.service.ack(conn.appid, conn.cid, event.seq)) is not None:
                # Throttled, as every refusal a client can repeat at will: a daemon
                # sending these as fast as its link goes wrote a warning line each.
                self.edge.warn(
                    "refused an ack past the last seq issued",
                    appid=conn.appid,
                    cid=conn.cid,
                    seq=event.seq,
                )
                await ws.send_str(refused)
        elif isinstance(event, wire.Receipted):
            assert conn is not None
            await self.service.receipt(conn.appid, conn.cid, event)
        elif isinstance(event, wire.Reply):
            self.edge.warn("refused a frame from a daemon", frame=event.frame)
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


async def _json_body(request: web.Request, timeout_s: float) -> Any:
    try:
        if request.content.is_eof():  # all here already: no timer to set and cancel
            raw = await request.read()
        else:
            async with asyncio.timeout(timeout_s):
                raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise UniError(
            errors.PARAMS, f"request body larger than {request.app._client_max_size} bytes"
        ) from None
    except TimeoutError:
        raise UniError(
            errors.PARAMS, f"request body: not complete after {timeout_s:g} s", 408
        ) from None
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UniError(
            errors.PARAMS, f"request body is not UTF-8: byte {exc.start} is invalid"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise UniError(
            errors.PARAMS, f"request body: must nest at most {MAX_DEPTH} levels deep"
        ) from None
    except ValueError as exc:
        raise UniError(errors.PARAMS, f"request body is not JSON: {exc}") from None
    check_json_value(value, "request body")
    return value


# the edge: what reaches aiohttp at all ---------------------------------------------

#: asyncio's loop reports a failed accept() (no file descriptor left) with this text.
ACCEPT_ERROR = "socket.accept() out of system resource"
#: File descriptors kept free below the nofile limit for the store, logs and the rest.
FD_RESERVE = 64
#: A repeated warning is logged at most once in this many seconds, with a count.
LOG_EVERY_S = 10.0


class _Throttled:
    """Warnings that can repeat thousands of times a second (a flood, an attack): one
    line per event per ``every`` seconds, carrying how many were left out since."""

    def __init__(self, every: float, clock: Callable[[], float]) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, event: str, **fields: Any) -> None:
        now = self.clock()
        last = self._last.get(event)
        if last is not None and now - last < self.every:
            self._suppressed[event] = self._suppressed.get(event, 0) + 1
            return
        self._last[event] = now
        log.warning(event, suppressed=self._suppressed.pop(event, 0), **fields)


class _HttpLog(logging.Logger):
    """aiohttp's server logger. It logs a malformed request (bad bytes in a header, a
    duplicate Host) as an error with a traceback; that is the client's mistake, so one
    throttled warning line says it. Handler failures are logged by envelope_errors."""

    def __init__(self, warn: _Throttled) -> None:
        super().__init__("unipush_bridge.gateway.http")
        self.propagate = False
        self._warn = warn

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        self._warn("refused a malformed HTTP request", error=str(error or msg).strip())


class _EnvelopeErrors(web.RequestHandler):
    """aiohttp's connection handler, answering a request it cannot parse (a header or
    request line past 8190 bytes, bad bytes in the head) in uni's envelope. Such a
    request never reaches a handler or a middleware, and aiohttp answered it with a
    text page, which a uni client reading ``errCode`` cannot parse. Only the answer
    changes: aiohttp's checks, its log line (_HttpLog) and the closed link stay."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)
        if not isinstance(exc, HttpProcessingError) or plain.status >= 500:
            return plain
        why = str(exc.message).strip() or plain.reason
        err = UniError(errors.PARAMS, f"malformed HTTP request: {why}", plain.status)
        response = web.json_response(err.envelope(), status=plain.status)
        response.force_close()
        return response


def _with_envelope_errors(server: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """aiohttp's Server makes a RequestHandler with the runner's settings; the one
    answer it gets wrong for us is the error page above, so the handler is made of
    that subclass (it adds no state: __slots__ is empty, the layout is the same)."""

    def make() -> asyncio.Protocol:
        handler = server()
        if type(handler) is web.RequestHandler:
            handler.__class__ = _EnvelopeErrors
        return handler

    return make


class _Guarded(asyncio.Protocol):
    """One TCP connection on its way to aiohttp's handler, made only once the edge
    admits the connection; everything else is passed through."""

    def __init__(self, edge: Edge, make: Callable[[], asyncio.Protocol]) -> None:
        self.edge = edge
        self.make = make
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.requested = False
        self.busy = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.edge.admit(self):
            transport.abort()
            return
        self.inner = self.make()
        self.edge.bind(self.inner, self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.edge.forget(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class Edge:
    """The gateway's front door (issue 10 items 4 and 9).

    - Requests: a foreign Host (DNS rebinding) is answered 421, an Origin not listed
      (a web page) 403, a POST body that is not application/json 415, before any
      handler runs (the websocket upgrade included).
    - Connections: at most ``max_connections`` (clamped below the nofile limit, which
      is raised to its hard limit at start); at the cap a new connection replaces the
      oldest one with no request in progress, or is closed at once. A connection has
      ``header_timeout_s`` to send its first request head; aiohttp's keep-alive
      timeout closes one that is idle (or dripping its next head) after a request.
    - A failed accept() is logged once per ``LOG_EVERY_S``, not once per attempt.
    """

    def __init__(self, config: GatewayConfig, monotonic: Callable[[], float]) -> None:
        self.config = config
        self.cap = config.max_connections
        self.warn = _Throttled(LOG_EVERY_S, monotonic)
        #: Admitted connections, and those of them with no request in progress
        #: (oldest first: the first to go at the cap).
        self._open: dict[_Guarded, None] = {}
        self._idle: dict[_Guarded, None] = {}
        self._by_handler: dict[asyncio.Protocol, _Guarded] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        #: Host and Content-Type values accepted already: every request of a sender's
        #: keep-alive link carries the same ones, and checking them (a regex, an
        #: ip_address parse) again each time was a few us per sendMessage. Bounded:
        #: a client may vary the port in Host at will.
        self._hosts_ok: set[str | None] = set()
        self._types_ok: set[str | None] = set()

        @web.middleware
        async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            self._busy(request.protocol, +1)
            try:
                response: web.StreamResponse = await handler(request)
                return response
            finally:
                self._busy(request.protocol, -1)

        self.middleware = middleware

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # requests -------------------------------------------------------------------------

    def refusal(self, request: web.Request) -> web.Response | None:
        config = self.config
        headers = request.headers
        host = headers.get("Host")
        if host not in self._hosts_ok:
            why = config.host_refusal(host)
            if why is not None:
                return self._refuse(
                    "refused a request for a foreign Host", 421, errors.FORBIDDEN, why
                )
            _keep(self._hosts_ok, host)
        why = config.origin_refusal(headers.get("Origin"))
        if why is not None:
            return self._refuse("refused a request from a web page", 403, errors.FORBIDDEN, why)
        if request.method == "POST" and request.body_exists:
            ctype = headers.get("Content-Type")
            if ctype not in self._types_ok:
                why = content_type_refusal(ctype, True)
                if why is not None:
                    return self._refuse("refused a body that is not JSON", 415, errors.PARAMS, why)
                _keep(self._types_ok, ctype)
        return None

    def _refuse(self, event: str, status: int, code: int, why: str) -> web.Response:
        self.warn(event, reason=why)
        response = web.json_response(UniError(code, why, status).envelope(), status=status)
        response.force_close()  # whatever else the client meant to send, not on this link
        return response

    # connections ----------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Raise nofile, fit the cap below it, and take over accept() error reports."""
        self._loop = loop
        limit = raise_nofile_limit()
        fits = max(1, limit - FD_RESERVE)
        if fits < self.config.max_connections:
            log.warning(
                "max_connections lowered to fit the open-files limit",
                max_connections=self.config.max_connections,
                nofile=limit,
                cap=fits,
            )
        self.cap = min(self.config.max_connections, fits)
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)

    def uninstall(self) -> None:
        loop = self._loop
        if loop is not None and loop.get_exception_handler() == self._on_loop_error:
            loop.set_exception_handler(self._previous)

    def protocol_factory(self, server: Callable[[], asyncio.Protocol]) -> Callable[[], _Guarded]:
        make = _with_envelope_errors(server)
        return lambda: _Guarded(self, make)

    def admit(self, conn: _Guarded) -> bool:
        if len(self._open) >= self.cap:
            oldest = next(iter(self._idle), None)
            if oldest is None:
                self.warn("connection cap reached: refused a connection", cap=self.cap)
                return False
            self.warn("connection cap reached: closed the oldest idle connection", cap=self.cap)
            self._close(oldest)
        self._open[conn] = None
        self._idle[conn] = None
        assert self._loop is not None
        conn.deadline = self._loop.call_later(self.config.header_timeout_s, self._expire, conn)
        return True

    def bind(self, handler: asyncio.Protocol, conn: _Guarded) -> None:
        self._by_handler[handler] = conn

    def forget(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        self._idle.pop(conn, None)
        if conn.inner is not None:
            self._by_handler.pop(conn.inner, None)
        if conn.deadline is not None:
            conn.deadline.cancel()

    def busy(self, handler: Any, busy: bool) -> None:
        """Count a connection's request as in progress again (True) or not (False):
        a websocket waiting for its hello is not a request being answered."""
        self._busy(handler, 1 if busy else -1)

    def _busy(self, handler: Any, step: int) -> None:
        conn = self._by_handler.get(handler)
        if conn is None:
            return
        conn.busy += step
        if step > 0:
            conn.requested = True
            if conn.deadline is not None:
                conn.deadline.cancel()
                conn.deadline = None
            self._idle.pop(conn, None)
        elif conn.busy <= 0 and conn in self._open:
            self._idle[conn] = None  # the newest idle one

    def _expire(self, conn: _Guarded) -> None:
        conn.deadline = None
        if not conn.requested and conn in self._open:
            self.warn(
                "closed a connection that sent no complete request in time",
                header_timeout_s=self.config.header_timeout_s,
            )
            self._close(conn)

    def _close(self, conn: _Guarded) -> None:
        self.forget(conn)
        if conn.transport is not None:
            conn.transport.abort()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_ERROR:
            self.warn(
                "cannot accept connections: out of file descriptors or memory",
                error=str(context.get("exception")),
                open_connections=len(self._open),
            )
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


#: Accepted Host (or Content-Type) values the edge remembers at most.
ACCEPTED_KEPT = 64


def _keep(accepted: set[str | None], value: str | None) -> None:
    if len(accepted) < ACCEPTED_KEPT:
        accepted.add(value)


def content_type_refusal(content_type: str | None, has_body: bool) -> str | None:
    """Why a POST with a body is refused for its Content-Type, or None. A browser
    sends text/plain or a form type without asking first (a CORS "simple request");
    only a JSON type needs its permission, which this gateway never gives."""
    rule = "POST bodies must be sent with Content-Type: application/json"
    if not has_body:
        return None  # no argument: nothing a form or a text body could smuggle
    if content_type is None:
        return f"Content-Type missing: {rule}"
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != "application/json":
        return f"Content-Type {content_type!r} is refused: {rule}"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return f"Content-Type {content_type!r} is refused: JSON is UTF-8 (charset=utf-8)"
    return None


def raise_nofile_limit() -> int:
    """Raise the open-files soft limit to the hard limit (many daemons, each a socket);
    the soft limit in force after."""
    if sys.platform == "win32":
        return 1 << 20  # no nofile limit; Windows caps sockets otherwise
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1 << 20
    target = 1 << 20 if resource.RLIM_INFINITY in (hard, soft) else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


async def serve_forever(config: GatewayConfig, stop: asyncio.Event) -> None:
    gateway = Gateway(config)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await gateway.stop()

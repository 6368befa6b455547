"""The web endpoint: uni-app pages in a browser on this machine reach the local API.

Opt-in (``web_port``). One loopback port serves ``GET /sdk.js`` (the browser SDK,
js/sdk/unipush-bridge.js) and a websocket at ``/ws`` on which a page speaks the local
API's requests, answers and events, one JSON object per text message, after a
``hello`` that carries its pairing token. The calls go to the same
:class:`~.localapi.LocalApiServer` the Unix socket uses; this module only decides
who may come in (Origin, Host, token) and how much they may ask (rate, calls in
flight, connections). docs/web.md describes it; the decisions are the plain functions
at the top, the websocket I/O is below them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple, cast

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..errors import UnipushError
from ..gateway.ratelimit import RateLimiter
from ..wire import local as wire
from . import webpair
from .localapi import LocalApiServer

log = structlog.get_logger(__name__)

WS_PATH = "/ws"
SDK_PATH = "/sdk.js"
#: The uni calls a page may make. Not: history, clickHistory, status (the state dir,
#: the socket, other apps' notifications shown by the CLI) and the quiet hours toggle
#: (the user's, not a page's).
PAGE_METHODS = frozenset(
    {
        "getPushClientId",
        "onPushMessage",
        "offPushMessage",
        "createPushMessage",
        "setPushChannel",
        "getAllChannels",
        "getChannelDetails",
    }
)
#: Web connections at once (each may be a listener).
MAX_CONNECTIONS = 16
#: Calls of one connection still running (getPushClientId waits, a notification waits
#: for its server) before more are refused; above the rate's burst, so only slow
#: calls that pile up reach it.
MAX_IN_FLIGHT = 64
#: Messages of any kind (acks too) a second, as a multiple of web_rate, past which the
#: connection is closed: a page that floods is not slowed, it is cut.
FLOOD_FACTOR = 10
HELLO_TIMEOUT_S = 10.0
#: Close codes (4000-4999 are the application's).
CLOSE_NO_HELLO = 4400
CLOSE_NOT_PAIRED = 4401
CLOSE_FLOOD = 1008
#: Loopback names a browser puts in Host for this endpoint (DNS rebinding: a hostile
#: name resolving to 127.0.0.1 carries its own name here).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Refusal(NamedTuple):
    status: http.HTTPStatus
    reason: str


#: The SDK's files by path: the classic script (also what a side-effect import loads),
#: and the ES module entry with the file it imports beside it.
SDK_FILES = {
    SDK_PATH: "unipush-bridge.js",
    "/unipush-bridge.js": "unipush-bridge.js",
    "/sdk.mjs": "index.js",
}


def sdk_file(name: str) -> Path | None:
    """An SDK file in the package (an installed wheel: runtime/sdk/) or in the
    checkout's js/sdk/."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "sdk" / name, here.parents[3] / "js" / "sdk" / name):
        if candidate.is_file():
            return candidate
    return None


def repeat_refusal(headers: Headers, names: tuple[str, ...]) -> Refusal | None:
    """400 for a header the checks read that came more than once: which of two to read
    is not for the endpoint to guess (and websockets' ``headers.get`` raises on it)."""
    for name in names:
        if len(headers.get_all(name)) > 1:
            return Refusal(
                http.HTTPStatus.BAD_REQUEST,
                f"more than one {name} header: a request must carry exactly one",
            )
    return None


def host_refusal(host: str | None, port: int) -> str | None:
    """Why this Host header is not this endpoint's, or None: a loopback name with our
    port (a browser always sends the port unless it is 80)."""
    if host is None:
        return "a Host header is required"
    value = host.strip().lower()
    names = [f"{n}:{port}" for n in LOOPBACK_NAMES]
    if port == 80:
        names += list(LOOPBACK_NAMES)
    if value in names:
        return None
    return (
        f"Host {host!r} is not this endpoint ({', '.join(names[:3])}): only pages that "
        "name it by a loopback name may connect (a guard against DNS rebinding)"
    )


def origin_refusal(origin: str | None, allowed: frozenset[str]) -> str | None:
    """Why a page of this Origin may not connect, or None."""
    if origin is None:
        return (
            "an Origin header is required: this endpoint is for web pages; local apps "
            "use the daemon's Unix socket"
        )
    try:
        normal = webpair.normalize_origin(origin)
    except ValueError:
        normal = None
    if normal is not None and normal in allowed:
        return None
    return f"Origin {origin!r} is not in the web_origins setting"


def refusal(
    request_path: str, headers: Headers, port: int, allowed: frozenset[str], connections: int
) -> Refusal | None:
    """The answer to a request before any websocket: None lets a websocket through.
    ``connections``: those that would not give way to it (pages that said hello)."""
    path = request_path.split("?", 1)[0]
    repeated = repeat_refusal(headers, ("Host", "Origin"))
    if repeated is not None:
        return repeated
    why = host_refusal(headers.get("Host"), port)
    if why is not None:
        return Refusal(http.HTTPStatus.FORBIDDEN, why)
    if path != WS_PATH:
        return Refusal(
            http.HTTPStatus.NOT_FOUND, f"no such path; the SDK is {SDK_PATH} (module: /sdk.mjs)"
        )
    why = origin_refusal(headers.get("Origin"), allowed)
    if why is not None:
        return Refusal(http.HTTPStatus.FORBIDDEN, why)
    if connections >= MAX_CONNECTIONS:
        return Refusal(
            http.HTTPStatus.SERVICE_UNAVAILABLE,
            f"too many web connections (at most {MAX_CONNECTIONS}); close other pages",
        )
    return None


def call_refusal(req: wire.Request) -> str | None:
    """Why a page may not make this call, whatever its rate, or None. A page names no
    local file: a file: icon (which the daemon, not the browser, would read and hand
    to the notification server) is refused, and a "/static/logo.png" is made the app
    root's (``_www/...``, uni's meaning) before the call runs, never a system path."""
    if req.method not in PAGE_METHODS:
        return "not available to web pages (docs/web.md lists what a page may call)"
    if req.method == "createPushMessage":
        icon = req.params.get("icon")
        if isinstance(icon, str):
            form = icon.strip()
            if form.lower().startswith("file:"):
                return (
                    "icon: a web page may not name a local file (file:); give an "
                    "http(s) URL or a path in the app (static/logo.png)"
                )
            if form.startswith("/"):
                req.params["icon"] = "_www/" + form.lstrip("/")
    return None


def hello_refusal(text: str | bytes, pairs: Path, origin: str) -> tuple[wire.RequestId, str | None]:
    """The hello's id and why it does not let the page in (None: it does)."""
    try:
        req = wire.parse_request(text)
    except wire.BadRequest as exc:
        return exc.answer.id, f"the first message must be a hello: {exc}"
    if req.method != "hello":
        return req.id, f"the first message must be a hello with the pairing token, not {req.method}"
    return req.id, webpair.check(pairs, origin, req.params.get("token"))


class _Outlet:
    """The StreamWriter surface ApiConnection writes to, over a websocket: each line
    goes out as one text message, in order, from one task. ``drain`` returns once
    every line is handed to the websocket."""

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._gone = False
        self.transport = self  # ApiConnection asks its writer's transport for these
        self._task = asyncio.get_running_loop().create_task(self._pump())
        self._closing: asyncio.Task[None] | None = None

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return self._size

    def write(self, line: bytes) -> None:
        if self._gone:
            return
        self._lines.append(line)
        self._size += len(line)
        self._idle.clear()
        self._wake.set()

    def writelines(self, lines: list[bytes]) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        await self._idle.wait()
        if self._gone:
            raise ConnectionError("the page's websocket closed")

    def abort(self) -> None:
        self._gone = True
        self._lines.clear()
        self._size = 0
        self._idle.set()
        self._ws.transport.abort()

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._ws.close())

    async def _pump(self) -> None:
        while not self._gone:
            while self._lines:
                line = self._lines[0]
                try:
                    await self._ws.send(line.rstrip(b"\n").decode("utf-8"))
                except ConnectionClosed:
                    self._gone = True
                    break
                self._lines.popleft()
                self._size -= len(line)
            self._idle.set()
            if self._gone:
                break
            self._wake.clear()
            await self._wake.wait()
        self._idle.set()


class WebEndpoint:
    """The loopback HTTP + websocket server for pages; see the module docstring."""

    def __init__(
        self,
        api: LocalApiServer,
        *,
        appid: str,
        host: str,
        port: int,
        origins: tuple[str, ...],
        pairs: Path,
        rate: float = 20.0,
    ) -> None:
        self.api = api
        self.appid = appid
        self.host = host
        self._port = port
        self.origins = frozenset(webpair.normalize_origin(o, "web_origins") for o in origins)
        self.pairs = pairs
        self.rate = rate
        self._requests = RateLimiter(rate, 2 * rate, time.monotonic, max_keys=4 * MAX_CONNECTIONS)
        self._messages = RateLimiter(
            FLOOD_FACTOR * rate, 2 * FLOOD_FACTOR * rate, time.monotonic, 4 * MAX_CONNECTIONS
        )
        self._server: Server | None = None
        #: Connections with no hello yet, oldest first: at the cap the oldest gives way
        #: to a newcomer (else 16 silent ones, opened again every 10 s, kept pages out).
        self._waiting: dict[ServerConnection, None] = {}
        self._paired: set[ServerConnection] = set()
        self._giving_way: set[asyncio.Task[None]] = set()
        self._sdk: dict[str, bytes] = {}  # read once: the daemon serves what it started with

    @property
    def port(self) -> int:
        if self._server is not None:
            for sock in self._server.sockets:
                return int(sock.getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{WS_PATH}"

    async def start(self) -> None:
        """Raises UnipushError naming web_port when the port is taken."""
        try:
            self._server = await self._serve_on_port()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise UnipushError(
                f"web_port: port {self._port} on {self.host} is taken by another program; "
                "set another web_port, or 0 for any free port (status shows the URL)"
            ) from None
        log.info("web endpoint listening", url=self.url, origins=sorted(self.origins))

    async def _serve_on_port(self) -> Server:
        return await serve(
            self._serve,
            self.host,
            self._port,
            process_request=self._process_request,
            max_size=wire.MAX_LINE,
            max_queue=4,
            server_header=None,
            open_timeout=HELLO_TIMEOUT_S,
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        name = SDK_FILES.get(request.path.split("?", 1)[0])
        if name is not None and "Upgrade" not in request.headers:
            repeated = repeat_refusal(request.headers, ("Host",))
            if repeated is not None:
                return _text(*repeated)
            why = host_refusal(request.headers.get("Host"), self.port)
            if why is not None:
                return _text(http.HTTPStatus.FORBIDDEN, why)
            return self._sdk_response(name)
        found = refusal(request.path, request.headers, self.port, self.origins, len(self._paired))
        if found is None:
            if len(self._waiting) + len(self._paired) >= MAX_CONNECTIONS:
                self._give_way()
            return None
        log.info("refused a web request", path=request.path[:200], reason=found.reason)
        return _text(found.status, found.reason)

    def _sdk_response(self, name: str) -> Response:
        if name not in self._sdk:
            path = sdk_file(name)
            if path is None:
                return _text(
                    http.HTTPStatus.NOT_FOUND,
                    f"the SDK file is not in this installation (js/sdk/{name})",
                )
            self._sdk[name] = path.read_bytes()
        body = self._sdk[name]
        # Not secret: any page may load it (an ES module import across origins needs
        # CORS); what it connects to checks the page.
        headers = Headers(
            [
                ("Content-Type", "text/javascript; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Access-Control-Allow-Origin", "*"),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
            ]
        )
        return Response(200, "OK", headers, body)

    def _give_way(self) -> None:
        """Close the oldest connection that has not said hello, for a newcomer."""
        ws = next(iter(self._waiting))
        del self._waiting[ws]
        log.info("a web connection with no hello gave way to a new one")
        task = asyncio.get_running_loop().create_task(
            ws.close(CLOSE_NO_HELLO, "no hello; gave way to a new connection")
        )
        self._giving_way.add(task)
        task.add_done_callback(self._giving_way.discard)

    async def _serve(self, ws: ServerConnection) -> None:
        self._waiting[ws] = None
        try:
            await self._session(ws)
        finally:
            self._waiting.pop(ws, None)
            self._paired.discard(ws)

    async def _session(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        origin = webpair.normalize_origin(ws.request.headers["Origin"])
        try:
            first = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await ws.close(CLOSE_NO_HELLO, "no hello")
            return
        except ConnectionClosed:
            return
        if ws not in self._waiting:
            return  # it gave way to a newcomer while its hello came in
        rid, why = hello_refusal(first, self.pairs, origin)
        if why is not None:
            log.info("a web page was refused", origin=origin, reason=why)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_answer(rid, wire.fail("hello", why)))
                await ws.close(CLOSE_NOT_PAIRED, "not paired")
            return
        del self._waiting[ws]
        self._paired.add(ws)
        await ws.send(_answer(rid, wire.ok("hello", appid=self.appid)))
        log.info("a web page connected", origin=origin)
        outlet = _Outlet(ws)
        conn = self.api.connect(cast(asyncio.StreamWriter, outlet))
        key = str(id(conn))
        in_flight: set[asyncio.Task[None]] = set()

        def gate(req: wire.Request) -> str | None:
            why = call_refusal(req)
            if why is not None:
                return why
            if not self._requests.allow(key):
                return f"rate limit: at most {self.rate:g} calls a second from one page"
            if len(in_flight) >= MAX_IN_FLIGHT:
                return f"too many calls in flight (at most {MAX_IN_FLIGHT}); await the others"
            return None

        closing: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if closing is not None:
                    continue  # read to the page's close frame: a cut would reset the link
                if not self._messages.allow(key):
                    log.warning("a web page floods the endpoint; closing it", origin=origin)
                    closing = asyncio.get_running_loop().create_task(
                        ws.close(CLOSE_FLOOD, "rate limit")
                    )
                    continue
                task = self.api.request(conn, message, gate)
                if task is not None:
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        except ConnectionClosed:
            pass
        finally:
            self.api.disconnect(conn)
            await conn.wait_closed()
            if closing is not None:
                with contextlib.suppress(ConnectionClosed):
                    await closing


def _answer(rid: wire.RequestId, result: dict[str, Any]) -> str:
    return wire.encode_answer(wire.Answer(rid, result)).rstrip(b"\n").decode("utf-8")


def _text(status: http.HTTPStatus, text: str) -> Response:
    body = (text + "\n").encode("utf-8")
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return Response(status.value, status.phrase, headers, body)

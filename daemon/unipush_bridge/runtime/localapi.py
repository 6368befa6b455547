"""The local API server: uni's calls over a Unix socket private to the user.

The wire format is :mod:`..wire.local` (shared with the clients); this module owns
the socket, one writer per connection, and the mapping from methods to the
:class:`Api` the driver offers. docs/protocol.md describes it beside the gateway
protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from .. import paths
from ..errors import AlreadyRunning, ApiFail
from ..wire import local as wire
from .changes import Changes
from .localpush import Channel

log = structlog.get_logger(__name__)

#: Events a slow listener may fall behind by before it is disconnected.
MAX_QUEUE = 10_000
#: Bytes a connection may have waiting for the kernel (answers and events) before it
#: is disconnected: a client that asks and never reads must not grow the daemon.
MAX_QUEUE_BYTES = 4 * 1024 * 1024
#: How long a closing connection may take to write what it has queued.
CLOSE_GRACE_S = 5.0
#: Calls of one connection running at once; past it the connection is not read until
#: one ends (each call is a task of a few KiB: a client that pipelines slow calls
#: must not grow the daemon).
MAX_CALLS = 1024
#: Socket connections at once (the ``max_local_connections`` setting's default): each
#: may hold MAX_QUEUE_BYTES unread, so without a cap N clients that subscribe and never
#: read grow the daemon by N times that. A client past it is answered with one
#: ``request:fail`` line and closed.
MAX_CONNECTIONS = 64
#: Seconds between log lines about connections refused at the cap (a client that
#: reconnects in a loop must not flood the journal either).
REFUSED_LOG_EVERY_S = 10.0
#: How long a refused connection is read (and dropped) for its client to see why.
REFUSE_LINGER_S = 2.0


class Api(Protocol):
    """What the local API needs from the daemon."""

    async def get_push_client_id(self, timeout: float | None) -> str: ...

    async def subscribe(self, listener: ApiConnection) -> None: ...

    def unsubscribe(self, listener: ApiConnection) -> None: ...

    async def create_push_message(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def set_push_channel(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def all_channels(self) -> list[Channel]: ...

    def history(self, limit: int) -> list[dict[str, Any]]: ...

    async def click_history(self, entry_id: str) -> None: ...

    async def set_quiet_hours(self, on: bool | None) -> dict[str, Any]: ...

    def get_quiet_hours(self) -> dict[str, Any]: ...


class ApiConnection:
    """One app connection; also a listener once it subscribes."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        # drain() then returns only once asyncio's own buffer is empty, i.e. every
        # line is in the kernel: what held() promises.
        writer.transport.set_write_buffer_limits(high=0)
        self._lines: deque[bytes] = deque()
        self._bytes = 0  # in self._lines
        self._queued = 0  # lines ever queued
        self._written = 0  # lines ever handed to the kernel
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._owed = 0  # lines send() wrote itself that are still in asyncio's buffer
        self._busy = False  # the writer task is writing
        self._wake = asyncio.Event()
        self._closing = False
        self.closed = False
        #: Subscribed with {"ack": true}: an event is held once the app acknowledges it.
        self.acks = False
        self._unacked: dict[str, asyncio.Future[bool]] = {}
        #: This connection's calls still running (their answers are owed to it).
        self.calls: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def send(self, line: bytes) -> None:
        if self._closing:
            return
        transport = self._writer.transport
        waiting = self._bytes + transport.get_write_buffer_size()
        if len(self._lines) >= MAX_QUEUE or (waiting and waiting + len(line) > MAX_QUEUE_BYTES):
            # Counted but never written, so held() cannot answer True for it; and cut
            # at once: a polite close would wait on the very app that does not read.
            # (One line bigger than the cap alone still goes: only falling behind counts.)
            self._queued += 1
            log.warning(
                "a local API client fell behind; disconnecting it",
                queued_lines=len(self._lines),
                queued_bytes=waiting,
                max_lines=MAX_QUEUE,
                max_bytes=MAX_QUEUE_BYTES,
            )
            self.abort()
            return
        self._queued += 1
        if not (self._lines or self._busy or self._owed or transport.get_write_buffer_size()):
            # Nothing queued or being written: straight to the socket, without a loop
            # round trip to wake the writer (this is on every push's path).
            self._writer.write(line)
            if transport.get_write_buffer_size() == 0:
                self._written += 1  # all of it in the kernel already
                self._release()
            else:
                self._owed = 1  # the writer waits for the rest
                self._wake.set()
            return
        self._lines.append(line)
        self._bytes += len(line)
        self._wake.set()

    def answer(self, rid: wire.RequestId, result: dict[str, Any]) -> None:
        try:
            line = wire.encode_answer(wire.Answer(rid, result))
        except (ValueError, TypeError, RecursionError) as exc:
            api = str(result.get("errMsg", wire.NOT_A_REQUEST)).split(":", 1)[0]
            log.warning("a local API answer cannot be encoded", api=api, error=repr(exc))
            reason = f"internal error: the answer cannot be encoded ({type(exc).__name__})"
            line = wire.encode_answer(wire.Answer(rid, wire.fail(api, reason)))
        self.send(line)

    def deliver(self, event: dict[str, Any], push_id: str | None = None) -> None:
        """Never raises: an event that cannot be encoded (nested too deep for the
        encoder, NaN, ...) is logged and skipped, and counts as handled, so it neither
        stalls the batch nor comes back for the next listener."""
        try:
            line = wire.encode_event(wire.Event(event, push_id))
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning(
                "an event cannot be encoded for the local API; skipped",
                push_id=push_id,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
            return
        # One given up at an offPushMessage (done) is owed again once handed on again.
        known = self._unacked.get(push_id) if push_id is not None else None
        if self.acks and push_id is not None and (known is None or known.done()):
            waiter = asyncio.get_running_loop().create_future()
            if self._closing:  # it will never be written, let alone acknowledged
                waiter.set_result(False)
            self._unacked[push_id] = waiter
        self.send(line)

    def acked(self, push_ids: list[str]) -> None:
        for push_id in push_ids:
            waiter = self._unacked.pop(push_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(True)

    async def held(self, push_ids: tuple[str, ...] = ()) -> bool:
        """Whether the app has these events. For a client that acknowledges: once it
        acknowledged each of them (its callbacks returned). For one that does not:
        once every line sent so far is in the kernel's socket buffer. False if the
        connection ended first."""
        if self.acks and push_ids:  # an id no longer waiting was acknowledged
            waiting = [self._unacked[i] for i in push_ids if i in self._unacked]
            return all(await asyncio.gather(*waiting))
        if self._written >= self._queued:
            return True
        if self.closed:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._queued, waiter))
        return bool(await waiter)

    def ended(self) -> None:
        """The app closed its end, or unsubscribed: what it did not acknowledge is not
        held, so it goes to the other listeners now, not at the hold timeout."""
        for waiter in self._unacked.values():
            if not waiter.done():
                waiter.set_result(False)

    def close(self) -> None:
        """Write what is queued, then close; cut after CLOSE_GRACE_S if the app does
        not take it (a stuck listener's close would otherwise never end)."""
        if not self._closing:
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, self._cut_if_open)
        self._closing = True
        self._wake.set()

    def _cut_if_open(self) -> None:
        if not self.closed:
            log.info("a local API client did not take its last lines; cutting it")
            self.abort()

    def abort(self) -> None:
        """Drop the connection now, with whatever it had not taken yet."""
        self._closing = True
        self._lines.clear()
        self._bytes = 0
        self._writer.transport.abort()
        self._wake.set()

    async def _drain(self) -> None:
        try:
            while True:
                if not self._lines and not self._owed:
                    if self._closing:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._busy = True
                owed, self._owed = self._owed, 0
                count = len(self._lines)
                self._writer.writelines([self._lines.popleft() for _ in range(count)])
                self._bytes = 0  # all of it is in the transport's buffer now (counted there)
                await self._writer.drain()
                self._written += count + owed
                self._busy = False
                self._release()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.closed = self._closing = True
            self._release(ended=True)
            for waiter in self._unacked.values():  # never acknowledged: someone else's
                if not waiter.done():
                    waiter.set_result(False)
            self._writer.close()

    def _release(self, ended: bool = False) -> None:
        still = []
        for target, waiter in self._waiters:
            if target <= self._written or ended:
                if not waiter.done():
                    waiter.set_result(target <= self._written)
            else:
                still.append((target, waiter))
        self._waiters = still

    async def wait_closed(self) -> None:
        await self._task


StatusFn = Callable[[], dict[str, Any]]
Handler = Callable[[ApiConnection, dict[str, Any]], Awaitable[dict[str, Any]]]
#: Refuses a request with a reason, or lets it through (None).
Gate = Callable[[wire.Request], str | None]


class LocalApiServer:
    def __init__(
        self,
        api: Api,
        path: Path,
        status: StatusFn,
        cid_timeout: float = 30.0,
        changes: Changes | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.api = api
        self.path = path
        self.status = status
        self.cid_timeout = cid_timeout
        #: What ``status {"after": n}`` waits on; without it, status answers at once.
        self.changes = changes
        self._server: asyncio.Server | None = None
        self._connections: set[ApiConnection] = set()
        #: Socket connections being served (web ones have their own cap, runtime/web.py).
        self.max_connections = max_connections
        self._socket_conns = 0
        self._refused = 0  # at the cap, since the last log line about it
        self._lingering = 0  # refused connections read until they close
        self._refused_logged = -REFUSED_LOG_EVERY_S
        self._calls: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        self._said_no_acks = False
        #: The uni calls this API answers, by name.
        self._handlers: dict[str, Handler] = {
            "getPushClientId": self._get_cid,
            "onPushMessage": self._on,
            "offPushMessage": self._off,
            "createPushMessage": self._create,
            "setPushChannel": self._set_channel,
            "getAllChannels": self._channels,
            "getChannelDetails": self._channel_details,
            "history": self._history,
            wire.CLICK_HISTORY: self._click_history,
            wire.SET_QUIET: self._set_quiet,
            wire.GET_QUIET: self._get_quiet,
            "status": self._status,
        }

    async def start(self) -> None:
        """Make the socket's directory if missing (0700, and then it is ours); an
        existing one keeps its mode (``--socket /tmp/x.sock`` must not change /tmp) but
        is checked: the default one must be private to us, any other one must be a
        directory nobody else can replace entries in. Raises UnsafePath."""
        paths.make_private_dirs(self.path.parent)
        paths.check_socket_dir(self.path)
        if self.path.exists() or self.path.is_symlink():
            holder = _live_holder(self.path)
            if holder is not None and holder != os.getuid():
                raise paths.UnsafePath(
                    f"socket {self.path} is held by uid {holder}, not this user (uid "
                    f"{os.getuid()}): another user listens there; give --socket a path in "
                    "a directory of your own"
                )
            if holder is not None:
                raise AlreadyRunning(f"another daemon is already listening on {self.path}")
            self.path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=wire.MAX_LINE
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def stop(self, grace: float = 1.0) -> None:
        """Close, and end every connection within ``grace`` s; the socket file goes
        only if it is ours (a refused start must not remove the running daemon's)."""
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = None
        for task in list(self._calls):
            task.cancel()
        # Each connection ends by itself (what is queued is written, then EOF ends its
        # reader); one that does not take its lines in time is cut. Left to asyncio.run
        # to cancel, each would log a CancelledError traceback.
        for conn in list(self._connections):
            conn.close()
        serving = [t for t in self._serving if not t.done()]
        if serving:
            _, late = await asyncio.wait(serving, timeout=grace)
            if late:
                for conn in list(self._connections):
                    conn.abort()
                await asyncio.wait(late, timeout=grace)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            paths.check_peer(writer.get_extra_info("socket"), "a local API client")
        except (paths.UnsafePath, OSError) as exc:
            # The socket is 0600, so this takes a root-made or inherited descriptor;
            # another user must never see our cid, events or clicks.
            log.warning("refused a local API connection", reason=str(exc))
            writer.transport.abort()
            return
        if self._socket_conns >= self.max_connections:
            await self._refuse(reader, writer)
            return
        self._socket_conns += 1
        conn = self.connect(writer)
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
        eof = False
        try:
            while not conn.closed:
                if len(conn.calls) >= MAX_CALLS:  # the rest waits in the kernel's buffer
                    await asyncio.wait(set(conn.calls), return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    line = await reader.readline()
                except ValueError:  # over MAX_LINE: no way to find where the next starts
                    reason = f"line is over {wire.MAX_LINE} bytes; closing the connection"
                    conn.answer(None, wire.fail(wire.NOT_A_REQUEST, reason))
                    break
                except ConnectionError:
                    break
                if not line:
                    eof = True
                    break
                try:
                    self.request(conn, line)
                except Exception:  # a bug must cost one answer, not the connection
                    log.exception("local API request failed")
                    conn.answer(None, wire.fail(wire.NOT_A_REQUEST, "internal error"))
        except asyncio.CancelledError:
            # The loop is shutting down: this is the connection's outermost frame, and
            # asyncio's stream callback would log the cancellation as an error.
            pass
        finally:
            if eof:
                await _answered(conn)
            self.disconnect(conn)
            self._socket_conns -= 1
            if task is not None:
                self._serving.discard(task)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One line that says why, then close: a client told nothing would retry at
        once, and its user would not know what to close. The line is small, so the
        kernel takes it even from a client that never reads.

        Only our side of the stream is shut at once: closed outright, the socket made
        the client's first write fail with EPIPE, and a client that sees its write
        fail may never read the reason (CI printed "Broken pipe" once). What the client
        sends is read and dropped until it closes, for REFUSE_LINGER_S at most, and
        only for as many refused connections at a time as the cap itself."""
        reason = (
            f"too many local API connections (at most {self.max_connections}, the "
            "max_local_connections setting); close other clients of this daemon"
        )
        writer.write(wire.encode_answer(wire.Answer(None, wire.fail(wire.NOT_A_REQUEST, reason))))
        self._note_refused()
        if self._lingering >= self.max_connections or not writer.can_write_eof():
            writer.close()
            return
        self._lingering += 1
        try:
            writer.write_eof()
            async with asyncio.timeout(REFUSE_LINGER_S):
                while await reader.read(65536):
                    pass
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass  # cancelled: the daemon is stopping, and this frame is the outermost
        finally:
            self._lingering -= 1
            writer.close()

    def _note_refused(self) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged >= REFUSED_LOG_EVERY_S:
            log.warning(
                "refused local API connections: too many at once",
                refused=self._refused,
                max_connections=self.max_connections,
            )
            self._refused, self._refused_logged = 0, now

    def connect(self, writer: asyncio.StreamWriter) -> ApiConnection:
        """A new connection to this API: the socket's, or a web page's (runtime/web.py
        hands its websocket in through a writer of the same surface)."""
        conn = ApiConnection(writer)
        self._connections.add(conn)
        return conn

    def disconnect(self, conn: ApiConnection) -> None:
        """The connection ended: it is no listener any more, and what it did not
        acknowledge goes to the others."""
        conn.ended()
        self.api.unsubscribe(conn)
        self._connections.discard(conn)
        conn.close()

    def request(
        self, conn: ApiConnection, line: bytes | str, gate: Gate | None = None
    ) -> asyncio.Task[None] | None:
        """Serve one line; the call runs as a task, which is returned. ``gate`` may
        refuse a request (not an ack) with a reason, answered as ``<method>:fail``:
        the web endpoint limits what a page may call, and how often."""
        try:
            req = wire.parse_request(line)
            if req.method == wire.ACK:  # one-way, on every event's path: no task, no answer
                conn.acked(wire.ack_ids(req.params))
                return None
        except wire.BadRequest as exc:
            conn.answer(exc.answer.id, exc.answer.result)
            return None
        handler = self._handlers.get(req.method)
        if handler is None:
            known = ", ".join(self._handlers)
            conn.answer(req.id, wire.fail(req.method, f"unknown method; known: {known}"))
            return None
        refused = gate(req) if gate is not None else None
        if refused is not None:
            conn.answer(req.id, wire.fail(req.method, refused))
            return None
        # Slow calls (waiting for a cid, a notification) must not hold up this
        # connection's other requests, so each runs as its own task.
        task = asyncio.get_running_loop().create_task(self._run(conn, req, handler))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        conn.calls.add(task)
        task.add_done_callback(conn.calls.discard)
        return task

    async def _run(self, conn: ApiConnection, req: wire.Request, handler: Handler) -> None:
        try:
            result = wire.ok(req.method, **await handler(conn, req.params))
        except ApiFail as exc:
            result = wire.fail(req.method, str(exc))
        except Exception as exc:
            log.exception("local API call failed", method=req.method)
            result = wire.fail(req.method, f"internal error: {type(exc).__name__}")
        conn.answer(req.id, result)

    async def _get_cid(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        timeout = _timeout(params, self.cid_timeout)
        return {"cid": await self.api.get_push_client_id(timeout)}

    async def _on(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        ack = params.get("ack", False)
        if not isinstance(ack, bool):
            raise ApiFail("ack must be a boolean")
        conn.acks = ack
        if not ack and not self._said_no_acks:
            self._said_no_acks = True
            log.info(
                "a listener does not acknowledge events; they count as delivered once "
                "written to its socket (update the client to lose nothing when it stops)"
            )
        await self.api.subscribe(conn)
        return {}

    async def _off(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        self.api.unsubscribe(conn)
        conn.ended()
        return {}

    async def _create(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return await self.api.create_push_message(params)

    async def _set_channel(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return self.api.set_push_channel(params)

    async def _channels(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        """uni's shape: channelId strings (uni-app code does ``indexOf`` on them)."""
        return {"channels": [c.channel_id for c in self.api.all_channels()]}

    async def _channel_details(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return {"channels": [c.to_uni() for c in self.api.all_channels()]}

    async def _history(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("limit", 20)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ApiFail("limit must be a whole number from 1 to 10000")
        entries, left_out = wire.fit_in_line(self.api.history(limit))
        return {"entries": entries, "left_out": left_out} if left_out else {"entries": entries}

    async def _click_history(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        push_id = params.get("push_id")
        if not isinstance(push_id, str) or not push_id:
            raise ApiFail("push_id must be a history entry's id (a non-empty string)")
        await self.api.click_history(push_id)
        return {}

    async def _set_quiet(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        try:
            on = wire.quiet_toggle(params)
        except ValueError as exc:
            raise ApiFail(str(exc)) from None
        return {"quiet": await self.api.set_quiet_hours(on)}

    async def _get_quiet(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        return {"quiet": self.api.get_quiet_hours()}

    async def _status(self, conn: ApiConnection, params: dict[str, Any]) -> dict[str, Any]:
        """``{"after": n, "timeout": s}``: a long poll. The answer waits until the
        daemon's change count is not ``n`` any more, or ``timeout`` seconds (default
        30, at most 60); ``changes`` in the answer is the count to pass next time."""
        after = params.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ApiFail("after must be a whole number: the changes of an earlier status")
        timeout = _timeout(params, 30.0)
        if self.changes is None:
            return self.status()
        if after is not None:
            await self.changes.wait(after, timeout)
        return {**self.status(), "changes": self.changes.count}


def _timeout(params: dict[str, Any], default: float) -> float:
    """A call's ``timeout`` param: seconds, 0 or more; raises ApiFail naming the rule."""
    timeout = params.get("timeout", default)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise ApiFail("timeout must be a number of seconds, 0 or more")
    return float(timeout)


async def _answered(conn: ApiConnection) -> None:
    """Wait for the calls of a client that shut only its sending side (``echo ... |
    socat``): it still reads, and their answers are owed to it. Stopping the server
    cancels them."""
    with contextlib.suppress(asyncio.CancelledError):
        while conn.calls and not conn.closed:
            await asyncio.wait(set(conn.calls))


def _live_holder(path: Path) -> int | None:
    """The uid of whoever accepts on ``path`` (this user's where the platform cannot
    tell), or None when nothing does: in a shared directory another user may have
    bound it first, and that is not "a daemon already running" to be talked to."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return None
        uid = paths.peer_uid(probe)
        return os.getuid() if uid is None else uid

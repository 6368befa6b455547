"""A TCP proxy owned by a test, for real link faults between the daemon and the gateway.

It runs its own asyncio loop on a background thread, listens on a loopback port and
forwards every connection to a target. The test thread switches its mode:

- ``restore()`` (the start state): bytes flow both ways;
- ``cut()``: every current connection is closed abruptly, both ends get a RST;
- ``stall()``: nothing is forwarded either way on any connection, old or new, but
  every socket stays open: a half-open link as after a suspend or a dead Wi-Fi. On
  ``restore()`` the held bytes flow again (the network came back);
- ``blackhole()``: new connections are accepted and never forwarded (not even
  connected upstream); current connections keep working. ``restore()`` resets them;
- ``reject()``: new connections are accepted and reset at once.

Every control call returns once the proxy's loop has applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

PASS = "pass"
STALL = "stall"
BLACKHOLE = "blackhole"
REJECT = "reject"
CHUNK = 64 * 1024


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a RST rather than a FIN: SO_LINGER with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Conn:
    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        _rst(self.client)
        if self.upstream is not None:
            _rst(self.upstream)


class FaultProxy:
    def __init__(
        self, target_port: int, target_host: str = "127.0.0.1", target_unix: str | None = None
    ) -> None:
        """``target_unix``: forward to that Unix socket instead (a test's redis-server)."""
        self.target = (target_host, target_port)
        self.target_unix = target_unix
        self.port = 0
        self.mode = PASS
        #: Connections accepted in total, and bytes forwarded in each direction.
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._held: set[_Conn] = set()  # blackholed: accepted, never forwarded
        self._flowing: asyncio.Event | None = None

    # lifecycle (test thread) ------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start)
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # faults (test thread) ----------------------------------------------------------------

    def cut(self) -> int:
        """Reset every current connection (forwarded and blackholed); returns how many."""
        return int(self._call(self._cut))

    def stall(self) -> None:
        self._call(self._set_mode, STALL)

    def blackhole(self) -> None:
        self._call(self._set_mode, BLACKHOLE)

    def reject(self) -> None:
        self._call(self._set_mode, REJECT)

    def restore(self) -> None:
        self._call(self._set_mode, PASS)

    def connections(self) -> int:
        """Connections open now (forwarded or blackholed)."""
        return int(self._call(lambda: len(self._conns) + len(self._held)))

    # loop side ------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        if inspect.iscoroutinefunction(fn):
            future = asyncio.run_coroutine_threadsafe(fn(*args), self._loop)
        else:
            future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _set_mode(self, mode: str) -> None:
        assert self._flowing is not None
        self.mode = mode
        if mode == STALL:
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == PASS:
            for conn in list(self._held):
                conn.reset()
            self._held.clear()

    def _cut(self) -> int:
        conns = [*self._conns, *self._held]
        for conn in conns:
            conn.reset()
        self._conns.clear()
        self._held.clear()
        return len(conns)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = _Conn(writer)
        if self.mode == REJECT:
            _rst(writer)
            return
        if self.mode == BLACKHOLE:
            self._held.add(conn)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while await reader.read(CHUNK):
                    pass  # read and drop: the peer's bytes go nowhere
            self._held.discard(conn)
            writer.transport.abort()
            return
        try:
            if self.target_unix is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self.target_unix)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)
            return
        conn.upstream = up_writer
        self._conns.add(conn)
        loop = asyncio.get_running_loop()
        conn.tasks = [
            loop.create_task(self._pump(reader, up_writer, conn, up=True)),
            loop.create_task(self._pump(up_reader, writer, conn, up=False)),
        ]
        await asyncio.gather(*conn.tasks, return_exceptions=True)
        self._conns.discard(conn)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, conn: _Conn, *, up: bool
    ) -> None:
        assert self._flowing is not None
        try:
            while data := await src.read(CHUNK):
                await self._flowing.wait()  # stalled: hold the bytes, keep the sockets
                dst.write(data)
                await dst.drain()
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
            # A clean end on one side ends the other politely (a FIN, not a RST).
            with contextlib.suppress(OSError):
                dst.close()
        except (ConnectionError, OSError):
            conn.reset()

"""Many lightweight bridge-protocol clients in one process, for bench_gateway.py.

Each client opens a websocket, sends ``hello`` (no cid: the server assigns one),
waits for ``welcome`` and then reads ``push`` frames, acknowledging them cumulatively
(after at most ``--ack-every`` frames or ``--ack-ms`` milliseconds), as a daemon would
but without storing anything. Without compression each client is a rawws.RawClient
(callbacks, no task per connection), so the clients' own CPU does not hide the server's;
``--compression deflate`` uses the ``websockets`` client, which negotiates it.

    python tests/bench/wsclients.py --url ws://127.0.0.1:P/ws --appid APP --clients N

Talks to its parent over stdio, one JSON object per line:

- once every client has registered (or failed to):
  ``{"ready": true, "registered": R, "failed": F, "connect_s": S, "cid": FIRST_CID}``
- stdin ``status`` -> the counters (see ``Stats.snapshot``);
- stdin ``wait FIELD N TIMEOUT`` -> the counters once ``FIELD`` (``received`` or
  ``with_push``) reaches ``N``, or after ``TIMEOUT`` seconds, whichever comes first;
- stdin ``quit`` or end of input -> close every connection and exit.

Receive times are ``time.time()``, so the parent can compare them with its own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rawws import HandshakeError, RawClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

OPEN_TIMEOUT_S = 20.0
REGISTER_TIMEOUT_S = 20.0
#: A stdin ``wait`` never lasts longer than this, whatever the parent asks.
MAX_WAIT_S = 120.0


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Stats:
    registered: int = 0
    failed: int = 0
    closed: int = 0
    #: push frames received, all connections together
    received: int = 0
    #: connections that received at least one push
    with_push: int = 0
    acks: int = 0
    bad_frames: int = 0
    first_recv: float | None = None
    last_recv: float | None = None
    ids: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "failed": self.failed,
            "closed": self.closed,
            "received": self.received,
            "unique": len(self.ids),
            "with_push": self.with_push,
            "acks": self.acks,
            "bad_frames": self.bad_frames,
            "first_recv": self.first_recv,
            "last_recv": self.last_recv,
            "errors": self.errors,
        }

    def gone(self, code: int | None) -> None:
        self.closed += 1
        self.error(f"closed: {code}")
        self.changed.set()


class Pushes:
    """One connection's received frames, counted into the shared Stats."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.got_one = False

    def take(self, raw: str | bytes) -> int | None:
        """The push frame's seq, or None for a frame that is not a push."""
        stats = self.stats
        now = time.time()
        try:
            frame = json.loads(raw)
        except ValueError:
            stats.bad_frames += 1
            return None
        if frame.get("type") != "push":
            stats.bad_frames += 1
            stats.error(f"frame: {str(raw)[:80]}")
            return None
        stats.received += 1
        stats.ids.add(frame["id"])
        if stats.first_recv is None:
            stats.first_recv = now
        if stats.last_recv is None or now > stats.last_recv:
            stats.last_recv = now
        if not self.got_one:
            self.got_one = True
            stats.with_push += 1
        stats.changed.set()
        return int(frame["seq"])


def hello_frame(appid: str) -> dict[str, Any]:
    # A secret binds the cid, as a real daemon's hello does (issue 10 item 1).
    return {"type": "hello", "v": 1, "appid": appid, "secret": secrets.token_hex(32)}


def ack_frame(stats: Stats, seq: int) -> str:
    stats.acks += 1
    return f'{{"type":"ack","seq":{seq}}}'


class Client:
    def __init__(self, args: argparse.Namespace, stats: Stats) -> None:
        self.args = args
        self.stats = stats
        self.pushes = Pushes(stats)
        self.ws: ClientConnection | None = None
        self.cid: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def register(self) -> bool:
        args = self.args
        try:
            self.ws = await connect(
                args.url,
                open_timeout=OPEN_TIMEOUT_S,
                ping_interval=None,
                close_timeout=2,
                max_size=256 * 1024,
                compression=None if args.compression == "none" else "deflate",
            )
            await self.ws.send(json.dumps(hello_frame(args.appid)))
            async with asyncio.timeout(REGISTER_TIMEOUT_S):
                frame = json.loads(await self.ws.recv())
        except (OSError, TimeoutError, ConnectionClosed, ValueError) as exc:
            self.stats.error(f"register: {type(exc).__name__}: {str(exc)[:80]}")
            if self.ws is not None:
                self.ws.transport.abort()
            return False
        if frame.get("type") != "welcome":
            self.stats.error(f"register: got {str(frame)[:80]}")
            self.ws.transport.abort()
            return False
        self.cid = frame["cid"]
        self.task = asyncio.get_running_loop().create_task(self.read())
        return True

    async def read(self) -> None:
        ws = self.ws
        assert ws is not None
        stats = self.stats
        loop = asyncio.get_running_loop()
        unacked = 0
        last_seq = 0
        ack_deadline = 0.0
        try:
            while True:
                if unacked:
                    try:
                        async with asyncio.timeout_at(ack_deadline):
                            raw = await ws.recv()
                    except TimeoutError:
                        await ws.send(ack_frame(stats, last_seq))
                        unacked = 0
                        continue
                else:
                    raw = await ws.recv()
                seq = self.pushes.take(raw)
                if seq is None:
                    continue
                last_seq = max(last_seq, seq)
                if not unacked:
                    ack_deadline = loop.time() + self.args.ack_ms / 1000
                unacked += 1
                if unacked >= self.args.ack_every:
                    await ws.send(ack_frame(stats, last_seq))
                    unacked = 0
        except ConnectionClosed as exc:
            stats.gone(exc.rcvd.code if exc.rcvd is not None else None)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.ws is not None:
            self.ws.transport.abort()


class RawBridgeClient:
    """The same client on rawws.RawClient: callbacks, no task or future per frame."""

    def __init__(self, args: argparse.Namespace, stats: Stats) -> None:
        self.args = args
        self.stats = stats
        self.pushes = Pushes(stats)
        self.cid: str | None = None
        self.conn: RawClient | None = None
        self.unacked = 0
        self.last_seq = 0
        self.timer: asyncio.TimerHandle | None = None

    async def register(self) -> bool:
        args = self.args
        welcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def first(text: str) -> None:
            if not welcome.done():
                welcome.set_result(text)

        def gone(code: int | None) -> None:
            if not welcome.done():
                welcome.set_exception(ConnectionError(f"closed: {code}"))

        conn = self.conn = RawClient(args.url, first)
        conn.on_close = gone
        try:
            await conn.open(OPEN_TIMEOUT_S)
            conn.send_text(json.dumps(hello_frame(args.appid)))
            async with asyncio.timeout(REGISTER_TIMEOUT_S):
                frame = json.loads(await welcome)
        except (OSError, TimeoutError, HandshakeError, ValueError) as exc:
            self.stats.error(f"register: {type(exc).__name__}: {str(exc)[:80]}")
            conn.abort()
            return False
        if frame.get("type") != "welcome":
            self.stats.error(f"register: got {str(frame)[:80]}")
            conn.abort()
            return False
        self.cid = frame["cid"]
        conn.on_text = self.on_push
        conn.on_close = self.stats.gone
        return True

    def on_push(self, raw: str) -> None:
        seq = self.pushes.take(raw)
        if seq is None:
            return
        self.last_seq = max(self.last_seq, seq)
        self.unacked += 1
        if self.unacked >= self.args.ack_every:
            self.ack()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.args.ack_ms / 1000, self.ack)

    def ack(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.unacked and self.conn is not None:
            self.conn.send_text(ack_frame(self.stats, self.last_seq))
            self.unacked = 0

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.conn is not None:
            self.conn.abort()


async def connect_all(args: argparse.Namespace, stats: Stats) -> list[Client | RawBridgeClient]:
    window = asyncio.Semaphore(args.batch)
    kind = RawBridgeClient if args.compression == "none" else Client
    clients = [kind(args, stats) for _ in range(args.clients)]

    async def one(client: Client | RawBridgeClient) -> None:
        async with window:
            if await client.register():
                stats.registered += 1
            else:
                stats.failed += 1

    await asyncio.gather(*(one(c) for c in clients))
    return [c for c in clients if c.cid is not None]


async def wait_field(stats: Stats, name: str, n: int, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + min(timeout, MAX_WAIT_S)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            while getattr(stats, name) < n:
                stats.changed.clear()
                await stats.changed.wait()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    stats = Stats()
    t0 = time.perf_counter()
    clients = await connect_all(args, stats)
    connect_s = time.perf_counter() - t0
    emit(
        {
            "ready": True,
            "registered": stats.registered,
            "failed": stats.failed,
            "connect_s": connect_s,
            "cid": clients[0].cid if clients else None,
            "errors": stats.errors,
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        if cmd == "wait" and len(rest) == 3 and rest[0] in ("received", "with_push"):
            await wait_field(stats, rest[0], int(rest[1]), float(rest[2]))
        elif cmd != "status":
            emit({"error": f"unknown command {line!r}"})
            continue
        emit(stats.snapshot())
    for c in clients:
        c.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--appid", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--batch", type=int, default=200, help="connections opened at once")
    parser.add_argument("--ack-every", type=int, default=100)
    parser.add_argument("--ack-ms", type=float, default=20.0)
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    raise_nofile()
    asyncio.run(main(parser.parse_args()))

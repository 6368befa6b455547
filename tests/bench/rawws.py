"""A bare RFC 6455 client as an asyncio Protocol, for the broadcast benchmarks.

The clients of a broadcast benchmark share the machine's two CPUs with the servers they
measure. With the ``websockets`` client each received frame costs its process about
150 us (a reader task, an assembler, a future per ``recv``), so 20,000 of them take 3 s
of CPU: the benchmark then timed its own clients. This one parses frames straight from
``data_received`` (no compression, unmasked server frames, as RFC 6455 5.1 requires) and
answers pings, so the time left is the server's.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from urllib.parse import urlsplit

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    pass


def masked_frame(opcode: int, data: bytes) -> bytes:
    """A final client frame (RFC 6455 5.2): every client frame is masked."""
    n = len(data)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + body


class RawClient(asyncio.Protocol):
    """One connection; ``on_text`` gets each text message, ``on_close`` its end."""

    def __init__(self, url: str, on_text: Callable[[str], None]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.on_text = on_text
        self.on_close: Callable[[int | None], None] = lambda code: None
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = bytearray()
        self.parts: list[bytes] = []
        self.closed = False

    async def open(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: self, self.host, self.port)
            await self.upgraded

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            del self.buf[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(HandshakeError(status.decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, head = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + n:
                return
            payload = bytes(buf[head : head + n])
            del buf[: head + n]
            opcode = b0 & 0x0F
            if opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.send(CLOSE, payload[:2])
                self._end(code)
                return
            elif opcode in (TEXT, 0x0):  # a text message, or a fragment of one
                self.parts.append(payload)
                if b0 & 0x80:
                    text = b"".join(self.parts).decode()
                    self.parts.clear()
                    self.on_text(text)

    def send(self, opcode: int, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(masked_frame(opcode, data))

    def send_text(self, text: str) -> None:
        self.send(TEXT, text.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or HandshakeError("closed before the upgrade"))
        self._end(None)

    def _end(self, code: int | None) -> None:
        if not self.closed:
            self.closed = True
            self.on_close(code)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

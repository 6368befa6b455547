"""issue 10 item 18: slow-drip icon URLs must not hold the threads open_url needs.

A real loopback server drips its answer one byte every 50 ms, which never trips a
socket timeout. Six such icons used to take every thread of the loop's default pool
(2 CPUs: 6 threads) for as long as the server liked, so open_url (webbrowser.open in
a thread) and later icons timed out.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from unipush_bridge.runtime import icons
from unipush_bridge.runtime.icons import IconResolver

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
SLOW = 6


class DripServer:
    """Answers every request with headers and then one body byte per 50 ms."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/drip.png"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
                # At most 4 s, so that a pool it did block (before the fix) frees up.
                for _ in range(80):
                    if self.stop.wait(0.05):
                        break
                    conn.sendall(b"\0")
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class Good(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    yield server
    server.close()


@pytest.fixture
def good() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Good)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/later.png"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


async def open_url_works() -> bool:
    """What open_url does: a call in the loop's default thread pool."""
    return await asyncio.wait_for(asyncio.to_thread(lambda: True), 1.0)


async def test_slow_drip_icons_leave_open_url_and_later_icons_working(
    tmp_path: Path, drip: DripServer, good: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 10 item 18: a deadline per fetch, and a pool of their own."""
    monkeypatch.setattr(icons, "FETCH_TIMEOUT_S", 0.5)
    app_icon = tmp_path / "app.png"
    app_icon.write_bytes(PNG)
    resolver = IconResolver(None, app_icon, tmp_path / "icons")
    started = time.monotonic()
    slow = [asyncio.ensure_future(resolver.resolve(f"{drip.url}?{n}")) for n in range(SLOW)]
    await asyncio.sleep(0.2)  # every slow fetch is dripping now
    assert await open_url_works()
    assert await asyncio.gather(*slow) == [app_icon] * SLOW
    # Each ends at its deadline (two at a time), or its turn never comes in time.
    assert time.monotonic() - started < 3
    later = await resolver.resolve(good)
    assert later != app_icon and later.read_bytes() == PNG
    assert await open_url_works()

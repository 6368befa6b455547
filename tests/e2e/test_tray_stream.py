"""A tray watching a daemon through a stream of pushes: the long-polled status answers
at once whenever something moved, and a stream moves something many times a second.
The tray must not turn that into a tight loop of status and history calls (each one
a round trip on the daemon's event loop and a menu refresh on the bus); it re-reads
at most every tray.app.WATCH_GAP_S. Counted on a real socket between the tray and the
real daemon: a proxy that reads each request's method."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.procs import wait_for
from tests.traystack import bus_env, item_prop, start_tray, stop, tray_name
from unipush_bridge.testing.plugin import Unipush

STREAM_S = 3.0


class CountingProxy:
    """Listens on ``path`` and forwards each connection to ``upstream``, counting the
    methods of the requests that go up."""

    def __init__(self, path: Path, upstream: Path) -> None:
        self.upstream = upstream
        self.methods: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(str(self.upstream))
            threading.Thread(target=self._up, args=(down, up), daemon=True).start()
            threading.Thread(target=self._down, args=(up, down), daemon=True).start()

    def _up(self, down: socket.socket, up: socket.socket) -> None:
        buf = b""
        while chunk := down.recv(65536):
            up.sendall(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            with self._lock:
                for line in lines:
                    self.methods[str(json.loads(line).get("method"))] += 1
        up.shutdown(socket.SHUT_WR)

    def _down(self, up: socket.socket, down: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := up.recv(65536):
                down.sendall(chunk)
            down.shutdown(socket.SHUT_WR)

    def count(self, method: str) -> int:
        with self._lock:
            return self.methods[method]

    def close(self) -> None:
        self._server.close()


@pytest.mark.unipush_server("dunst")
def test_a_stream_of_pushes_does_not_spin_the_tray(unipush: Unipush, tmp_path: Path) -> None:
    address = unipush.server.address
    private = tmp_path / "sock"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    proxy = CountingProxy(private / "tray.sock", unipush.daemon.socket)
    unipush.listen()  # an app takes the pushes: none goes to the screen
    tray = start_tray(private / "tray.sock", bus_env(address, unipush.server.env), tmp_path / "t")
    try:
        name = wait_for(lambda: tray_name(address), 10, "tray on the bus")
        wait_for(lambda: item_prop(address, name, "IconName") == "mail-unread", 10, "connected")
        before = proxy.count("status")
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < STREAM_S:
            unipush.push(title=f"stream {sent}", content="c")
            sent += 1
        took = time.monotonic() - started
        calls = proxy.count("status") - before
        print(f"{sent} pushes in {took:.1f} s: the tray asked status {calls} times")
        # Asking once a second was 3 or 4 calls here; one re-read per WATCH_GAP_S
        # (0.5 s) at most is 7 or 8 (and one more for the call out when it began).
        assert calls <= took / 0.5 + 3, f"the tray asked status {calls} times in {took:.1f} s"
    finally:
        stop(tray)
        proxy.close()

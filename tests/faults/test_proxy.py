"""The fault proxy itself, against a small echo server: pass, cut, stall, blackhole, reject."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy
from tests.procs import wait_for


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # A cut or rejected link resets the echo's side: that is the point, not an error
        # (socketserver would print its traceback into the test run's output).
        with self.request as conn, contextlib.suppress(ConnectionError):
            while data := conn.recv(65536):
                conn.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with FaultProxy(server.server_address[1]) as p:
        yield p
    server.shutdown()
    server.server_close()


def dial(proxy: FaultProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    s.settimeout(2)
    return s


def echo(s: socket.socket, data: bytes = b"ping") -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def silent(s: socket.socket, wait: float = 0.3) -> bool:
    """Nothing arrives within ``wait`` and the socket stays open."""
    s.settimeout(wait)
    try:
        s.recv(1)
    except TimeoutError:
        return True
    finally:
        s.settimeout(2)
    return False


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    with dial(proxy) as s:
        assert echo(s, b"hello") == b"hello"
        big = bytes(range(256)) * 2000
        assert echo(s, big) == big
    assert proxy.accepted == 1
    assert proxy.bytes_up >= 5 + len(big)


def test_cut_resets_current_connections_only(proxy: FaultProxy) -> None:
    with dial(proxy) as s:
        assert echo(s) == b"ping"
        wait_for(lambda: proxy.connections() == 1, 2, "the connection")
        assert proxy.cut() == 1
        with pytest.raises(ConnectionResetError):
            s.sendall(b"x")
            s.recv(1)
    with dial(proxy) as again:
        assert echo(again) == b"ping"


def test_stall_holds_bytes_without_closing_and_restore_releases_them(proxy: FaultProxy) -> None:
    with dial(proxy) as old:
        assert echo(old) == b"ping"
        proxy.stall()
        old.sendall(b"held")
        assert silent(old)
        with dial(proxy) as new:  # a new connection during the stall is stalled too
            new.sendall(b"late")
            assert silent(new)
            proxy.restore()
            assert new.recv(4) == b"late"
        assert old.recv(4) == b"held"


def test_blackhole_swallows_new_connections_and_keeps_old_ones(proxy: FaultProxy) -> None:
    with dial(proxy) as old:
        assert echo(old) == b"ping"
        proxy.blackhole()
        with dial(proxy) as dark:
            dark.sendall(b"anyone?")
            assert silent(dark)
            assert echo(old, b"still") == b"still"
            proxy.restore()  # blackholed connections are reset, not released
            with pytest.raises(ConnectionResetError):
                dark.recv(1)
        with dial(proxy) as new:
            assert echo(new) == b"ping"


def test_reject_resets_new_connections(proxy: FaultProxy) -> None:
    proxy.reject()
    # The reset shows in connect() or in the first read, depending on timing.
    with pytest.raises(ConnectionResetError), dial(proxy) as s:
        s.sendall(b"x")
        s.recv(1)
    proxy.restore()
    with dial(proxy) as s:
        assert echo(s) == b"ping"

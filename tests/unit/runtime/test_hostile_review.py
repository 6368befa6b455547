"""Holes found by an adversarial review (rev-sec), each shut by a rule named here.

- core.openable: an open_url with a control, space or bidi character, or no host, is
  not opened (it reaches xdg-open and the browser's command line as one argument, but
  what the user was shown and what opens may differ: ``http://bank.example\\u202e``).
- icons: an http icon's redirect may go to http(s) only (urllib followed one to ftp://,
  whose FTPHandler the fetch's deadline does not watch), at most 3 times.
- web: a page may not name a local file as an icon (file:; a /path is the app root's), which
  the browser would never let it read.
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from unipush_bridge.runtime import web
from unipush_bridge.runtime.core import openable
from unipush_bridge.runtime.icons import IconResolver
from unipush_bridge.wire import local as wire

# -- open_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a",
        "http://localhost:5173/page?x=1#y",
        "HTTPS://Example.com",
        "https://例え.jp/パス",
    ],
)
def test_web_pages_open(url: str) -> None:
    assert openable(url)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "myapp://x",
        " https://example.com",
        "https://example.com/\nfile:///etc/passwd",
        "https://example.com/ --foo",
        "https://example.com/\x1b]52;c;AAAA\x07",
        "https://bank.example\u202e/moc.live",
        "https://exa\u200bmple.com",
        "https://",
        "http:///etc/passwd",
        "https://example.com\x00.evil",
        "https://example.com/\x7f",
    ],
)
def test_what_is_not_a_plain_web_address_does_not_open(url: str) -> None:
    assert not openable(url)


# -- icon redirects ------------------------------------------------------------------


class _Redirector:
    def __init__(self, target: str) -> None:
        self.target = target
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", outer.target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/icon.png"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that records whether anyone connected (a stand-in FTP server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


def test_an_icon_redirect_to_ftp_is_not_followed(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    server = _Redirector(f"ftp://127.0.0.1:{port}/icon.png")
    app_icon = tmp_path / "app.png"
    app_icon.write_bytes(b"png")
    resolver = IconResolver(None, app_icon, tmp_path / "cache")
    try:
        got = asyncio.run(resolver.resolve(server.url))
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert got == app_icon
    assert not _connected(listener), "the fetch followed a redirect to ftp://"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "data:image/png;base64,AAAA"])
def test_an_icon_redirect_to_a_local_scheme_is_not_followed(tmp_path: Path, target: str) -> None:
    server = _Redirector(target)
    app_icon = tmp_path / "app.png"
    app_icon.write_bytes(b"png")
    resolver = IconResolver(None, app_icon, tmp_path / "cache")
    try:
        assert asyncio.run(resolver.resolve(server.url)) == app_icon
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_icon_opener_has_no_ftp_file_or_data_handler() -> None:
    from unipush_bridge.runtime import icons

    opener = icons._opener(icons._Deadline(0.1))
    schemes = {name.removesuffix("_open") for h in opener.handlers for name in dir(h)}
    assert not {"ftp", "file", "data"} & schemes


# -- what a web page may name --------------------------------------------------------


@pytest.mark.parametrize("icon", ["file:///home/u/.ssh/id_rsa", "FILE:///x", " file:/x"])
def test_a_web_page_may_not_name_a_local_file_as_icon(icon: str) -> None:
    req = wire.Request(1, "createPushMessage", {"content": "x", "icon": icon})
    why = web.call_refusal(req)
    assert why is not None and "icon" in why


@pytest.mark.parametrize("icon", ["/etc/passwd", "/static/logo.png", " //etc/x"])
def test_a_web_pages_root_path_icon_is_the_app_roots_never_a_system_file(icon: str) -> None:
    """uni's "/static/logo.png" (DCloud's hello-uni-app-x push page) is in the app; from a
    page it never names a system file, even one that exists (the daemon reads it)."""
    req = wire.Request(1, "createPushMessage", {"content": "x", "icon": icon})
    assert web.call_refusal(req) is None
    assert req.params["icon"] == "_www/" + icon.strip().lstrip("/")


@pytest.mark.parametrize("icon", ["https://cdn.example/a.png", "static/logo.png", None])
def test_a_web_page_may_name_a_web_icon_or_one_in_app_root(icon: str | None) -> None:
    params = {"content": "x"} if icon is None else {"content": "x", "icon": icon}
    assert web.call_refusal(wire.Request(1, "createPushMessage", params)) is None
    assert params.get("icon") == icon


def test_a_web_page_still_may_not_call_history() -> None:
    why = web.call_refusal(wire.Request(1, "history"))
    assert why is not None and "not available to web pages" in why


def test_a_history_click_on_a_disguised_url_warns_with_the_rule_and_opens_nothing() -> None:
    from tests.unit.runtime.test_core import sim
    from unipush_bridge.runtime import core

    s = sim()
    actions = s.core.history_clicked("e", {}, "https://bank.example\u202e/moc.live")
    assert not [a for a in actions if isinstance(a, core.OpenUrl)]
    (warn,) = [a for a in actions if isinstance(a, core.Warn)]
    assert "invisible character" in warn.text

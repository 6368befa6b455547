"""get_push_manager pointed at a web server that is not a gateway (issue 12 item 5):
GatewayUnreachable names the URL and the HTTP status, instead of a JSONDecodeError
traceback from an HTML page or an empty 404."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from unipush_bridge.clients.pushmanager import GatewayUnreachable, get_push_manager


class Web(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"" if self.path.startswith("/empty") else b"<html>nginx</html>"
        self.send_response(404 if not body else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Web)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "status", "what"), [("", 200, "text/html"), ("/empty", 404, "an empty body")]
)
async def test_not_a_gateway_names_the_url_and_status(
    web: str, path: str, status: int, what: str
) -> None:
    """issue 12 item 5."""
    async with get_push_manager("__UNI__DESKTOP", web + path) as push:
        with pytest.raises(GatewayUnreachable) as caught:
            await push.sendMessage({"push_clientid": "a" * 32, "title": "t", "content": "c"})
    text = str(caught.value)
    assert f"{web}{path}/api/__UNI__DESKTOP/sendMessage answered HTTP {status}" in text
    assert what in text
    assert "not a unipush-bridge gateway" in text

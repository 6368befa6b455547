"""icons.py: uni's icon forms resolve to a local file, anything unusable to the app icon.

Real files in tmp_path; http(s) icons from a loopback http.server in a thread, which
counts the requests it gets.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from unipush_bridge.runtime import icons
from unipush_bridge.runtime.icons import MAX_ICON_BYTES, IconResolver

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class IconServer:
    """Serves fixed bodies by path; some paths misbehave on purpose."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.body_sent = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.hits[self.path] += 1
                server.route(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        if path in ("/logo.png", "/icon"):
            self.send(h, 200, PNG)
        elif path == "/exactly-1mib.png":
            self.send(h, 200, b"\0" * MAX_ICON_BYTES)
        elif path == "/huge-chunked.png":
            # no Content-Length: only reading tells the size
            h.send_response(200)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            chunk = b"\0" * 65536
            try:
                for _ in range(MAX_ICON_BYTES // len(chunk) + 2):
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif path == "/huge-declared.png":
            # announces more than the limit, then holds the body back until released:
            # a client that reads would hang here
            h.send_response(200)
            h.send_header("Content-Length", str(MAX_ICON_BYTES + 1))
            h.end_headers()
            h.wfile.flush()
            self.release.wait(10)
            try:
                h.wfile.write(b"\0" * (MAX_ICON_BYTES + 1))
                self.body_sent.set()
            except OSError:
                pass
        elif path == "/bad-length.png":
            h.send_response(200)
            h.send_header("Content-Length", "lots")
            h.end_headers()
            h.wfile.write(PNG)
        elif path == "/slow.png":
            self.release.wait(10)
            self.send(h, 200, PNG)
        elif path == "/bad-status.png":
            h.wfile.write(b"this is not HTTP\r\n\r\n")
        elif path == "/truncated.png":
            h.send_response(200)
            h.send_header("Content-Length", str(len(PNG) * 10))
            h.end_headers()
            h.wfile.write(PNG[:20])
            h.wfile.flush()
            h.close_connection = True
        else:
            self.send(h, 404, b"not found")

    @staticmethod
    def send(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def cached(cache: Path) -> list[Path]:
    """The files in the icon cache (none when it was never created)."""
    return sorted(cache.iterdir()) if cache.exists() else []


@pytest.fixture
def server() -> Iterator[IconServer]:
    srv = IconServer()
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "static").mkdir(parents=True)
    (root / "static" / "logo.png").write_bytes(PNG)
    return root


@pytest.fixture
def app_icon(tmp_path: Path) -> Path:
    path = tmp_path / "app-icon.png"
    path.write_bytes(PNG)
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "state" / "icons"


@pytest.fixture
def resolver(app_root: Path, app_icon: Path, cache: Path) -> IconResolver:
    return IconResolver(app_root, app_icon, cache)


# local forms ----------------------------------------------------------------------------------


async def test_relative_to_app_root(resolver: IconResolver, app_root: Path) -> None:
    assert await resolver.resolve("static/logo.png") == app_root / "static" / "logo.png"
    assert await resolver.resolve("./static/logo.png") == app_root / "static" / "logo.png"


async def test_www_prefix_is_the_app_root(resolver: IconResolver, app_root: Path) -> None:
    assert await resolver.resolve("_www/static/logo.png") == app_root / "static" / "logo.png"


async def test_absolute_path(resolver: IconResolver, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "x.png"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(PNG)
    assert await resolver.resolve(str(elsewhere)) == elsewhere


async def test_file_url_with_escapes(resolver: IconResolver, tmp_path: Path) -> None:
    spaced = tmp_path / "my icons" / "a b.png"
    spaced.parent.mkdir()
    spaced.write_bytes(PNG)
    url = spaced.as_uri()
    assert "%20" in url
    assert await resolver.resolve(url) == spaced
    assert await resolver.resolve("file://" + str(spaced).replace(" ", "%20")) == spaced


@pytest.mark.parametrize(
    "icon", ["../outside.png", "_www/../outside.png", "static/../../outside.png"]
)
async def test_escaping_app_root_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, tmp_path: Path, icon: str
) -> None:
    (tmp_path / "outside.png").write_bytes(PNG)  # exists, but outside the app root
    assert await resolver.resolve(icon) == app_icon


async def test_symlink_out_of_app_root_gives_the_app_icon(
    resolver: IconResolver, app_root: Path, app_icon: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.png").write_bytes(PNG)
    (app_root / "link.png").symlink_to(tmp_path / "secret.png")
    assert await resolver.resolve("link.png") == app_icon


@pytest.mark.parametrize(
    "icon",
    ["static/missing.png", "_www/missing.png", "/nonexistent/x.png", "file:///nonexistent/x.png"],
)
async def test_missing_file_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, icon: str
) -> None:
    assert await resolver.resolve(icon) == app_icon


async def test_directory_gives_the_app_icon(resolver: IconResolver, app_icon: Path) -> None:
    assert await resolver.resolve("static") == app_icon
    assert await resolver.resolve("_www/") == app_icon


async def test_relative_without_app_root_gives_the_app_icon(
    app_icon: Path, app_root: Path, cache: Path
) -> None:
    resolver = IconResolver(None, app_icon, cache)
    assert await resolver.resolve("static/logo.png") == app_icon
    assert await resolver.resolve("_www/static/logo.png") == app_icon
    # absolute forms need no app root
    logo = app_root / "static" / "logo.png"
    assert await resolver.resolve(str(logo)) == logo
    assert await resolver.resolve(logo.as_uri()) == logo


@pytest.mark.parametrize("icon", [None, ""])
async def test_no_icon_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, icon: str | None
) -> None:
    assert await resolver.resolve(icon) == app_icon


async def test_no_app_icon_means_none(app_root: Path, cache: Path) -> None:
    resolver = IconResolver(app_root, None, cache)
    assert await resolver.resolve(None) is None
    assert await resolver.resolve("static/missing.png") is None
    assert await resolver.resolve("static/logo.png") == app_root / "static" / "logo.png"


# http(s) ------------------------------------------------------------------------------------


async def test_http_icon_fetched_once_then_cached(
    resolver: IconResolver, server: IconServer, cache: Path
) -> None:
    url = f"{server.base}/logo.png"
    first = await resolver.resolve(url)
    assert first is not None
    assert first.parent == cache
    assert first.suffix == ".png"
    assert first.read_bytes() == PNG
    assert server.hits["/logo.png"] == 1
    second = await resolver.resolve(url)
    assert second == first
    assert server.hits["/logo.png"] == 1  # the server was not asked again
    assert [f for f in cached(cache) if f.suffix == ".part"] == []


async def test_cache_survives_a_new_resolver(
    app_root: Path, app_icon: Path, cache: Path, server: IconServer
) -> None:
    url = f"{server.base}/logo.png"
    first = await IconResolver(app_root, app_icon, cache).resolve(url)
    again = await IconResolver(app_root, app_icon, cache).resolve(url)
    assert first == again
    assert server.hits["/logo.png"] == 1


async def test_cache_is_keyed_by_the_whole_url(resolver: IconResolver, server: IconServer) -> None:
    a = await resolver.resolve(f"{server.base}/logo.png?v=1")
    b = await resolver.resolve(f"{server.base}/logo.png?v=2")
    assert a is not None and b is not None and a != b
    assert server.hits["/logo.png?v=1"] == server.hits["/logo.png?v=2"] == 1


async def test_url_without_an_image_suffix(resolver: IconResolver, server: IconServer) -> None:
    path = await resolver.resolve(f"{server.base}/icon")
    assert path is not None and path.suffix == ".img" and path.read_bytes() == PNG


async def test_404_gives_the_app_icon_and_is_not_cached(
    resolver: IconResolver, app_icon: Path, server: IconServer, cache: Path
) -> None:
    url = f"{server.base}/gone.png"
    assert await resolver.resolve(url) == app_icon
    assert await resolver.resolve(url) == app_icon
    assert server.hits["/gone.png"] == 2
    assert cached(cache) == []


async def test_exactly_the_limit_is_accepted(resolver: IconResolver, server: IconServer) -> None:
    path = await resolver.resolve(f"{server.base}/exactly-1mib.png")
    assert path is not None and path.stat().st_size == MAX_ICON_BYTES


async def test_body_over_the_limit_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, server: IconServer, cache: Path
) -> None:
    assert await resolver.resolve(f"{server.base}/huge-chunked.png") == app_icon
    assert cached(cache) == []


async def test_content_length_over_the_limit_is_refused_without_reading(
    resolver: IconResolver, app_icon: Path, server: IconServer
) -> None:
    started = time.monotonic()
    assert await resolver.resolve(f"{server.base}/huge-declared.png") == app_icon
    # the body is held back until release: reading it would have waited for the timeout
    assert time.monotonic() - started < 2
    assert not server.body_sent.is_set()


async def test_bad_content_length_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, server: IconServer
) -> None:
    assert await resolver.resolve(f"{server.base}/bad-length.png") == app_icon


async def test_slow_server_gives_the_app_icon(
    resolver: IconResolver,
    app_icon: Path,
    server: IconServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(icons, "FETCH_TIMEOUT_S", 0.3)
    started = time.monotonic()
    assert await resolver.resolve(f"{server.base}/slow.png") == app_icon
    assert time.monotonic() - started < 3


async def test_nobody_listening_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, server: IconServer
) -> None:
    base = server.base
    server.httpd.shutdown()
    server.httpd.server_close()
    assert await resolver.resolve(f"{base}/logo.png") == app_icon


async def test_non_http_answer_gives_the_app_icon(
    resolver: IconResolver, app_icon: Path, server: IconServer
) -> None:
    assert await resolver.resolve(f"{server.base}/bad-status.png") == app_icon


async def test_truncated_body_gives_the_app_icon_and_is_not_cached(
    resolver: IconResolver, app_icon: Path, server: IconServer, cache: Path
) -> None:
    assert await resolver.resolve(f"{server.base}/truncated.png") == app_icon
    assert cached(cache) == []


async def test_a_root_path_that_is_not_a_file_is_in_the_app_root(
    resolver: IconResolver, app_root: Path, app_icon: Path
) -> None:
    """uni-app code writes the app's own files as ``/static/...`` (the project root, as
    in ``<image src="/static/logo.png">``): DCloud's hello-uni-app-x uni-push page
    passes ``icon: "/static/test-image/logo.png"`` (dcloudio/unidocs-zh
    docs/uni-app-x/api/uni-push.md, the 示例), and uni-app x's Android runtime turns it
    into the app's file with ``UTSAndroid.convert2AbsFullPath`` (dcloudio/uni-api
    uni_modules/uni-push/utssdk/app-android/push/PushMessage.uts). A real file at that
    absolute path still wins (html5plus: 绝对路径 - 系统绝对路径)."""
    assert await resolver.resolve("/static/logo.png") == app_root / "static" / "logo.png"
    assert await resolver.resolve("/static/missing.png") == app_icon
    assert await resolver.resolve("/../outside.png") == app_icon

"""Turn uni's icon forms into a local image file, or the app icon when that fails.

uni-app accepts a path relative to the app root, ``_www/...`` (the app root too),
an absolute path (a ``/static/...`` that is no file there is the app root's, as
uni-app reads it) or ``file://``; http(s) icons are fetched here with a size and a
time limit and cached by URL, so a slow or huge icon never holds up a notification.

The time limit is a deadline for the whole fetch, not a socket timeout: a server that
drips a byte a second never trips a socket timeout, and used to hold a thread of the
shared pool for as long as it liked, until open_url and later icons timed out (issue
10 item 18). At the deadline the fetch's socket is shut down, which ends any read in
progress; fetches run on a small pool of their own, never the loop's default one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import http.client
import socket
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_ICON_BYTES = 1024 * 1024
#: The whole fetch (connect, headers, body) ends by then.
FETCH_TIMEOUT_S = 5.0
#: Icon fetches at once; more wait their turn (each within its own deadline).
FETCH_WORKERS = 2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".bmp")


@functools.cache
def _fetch_pool() -> ThreadPoolExecutor:
    """One small pool for every resolver (a SIGHUP makes a new resolver)."""
    return ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="icon-fetch")


class _Deadline:
    """Shuts down every socket of one fetch when its time is up."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched(http.client.HTTPConnection):
    """A connection whose socket the fetch's deadline can shut down."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        super().connect()
        self._deadline.watch(self.sock)


class _HTTPConnection(_Watched):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_HTTPConnection, deadline=self._deadline)
        return self.do_open(conn, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_HTTPSConnection, deadline=self._deadline)
        return self.do_open(conn, req)


#: Redirects an icon fetch follows at most (urllib's own limit is 10).
MAX_REDIRECTS = 3


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows a redirect to http(s) only: urllib's own also follows one to ftp://,
    whose handler the fetch's deadline does not watch (and which is no image host)."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(
                f"icon redirect to a {scheme or 'relative'}: URL refused: an icon's "
                "redirects may go to http(s) only"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _OnlyHTTP(urllib.request.OpenerDirector):
    pass


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """An opener with http(s) and nothing else: no ftp:, file: or data: handler
    (build_opener adds them all), so no redirect or URL can reach another scheme."""
    opener = _OnlyHTTP()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _RedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline),
    ):
        opener.add_handler(handler)
    return opener


class IconResolver:
    def __init__(self, app_root: Path | None, app_icon: Path | None, cache_dir: Path) -> None:
        self.app_root = app_root
        self.app_icon = app_icon
        self.cache_dir = cache_dir

    async def resolve(self, icon: str | None) -> Path | None:
        if not icon:
            return self.app_icon
        try:
            if icon.startswith(("http://", "https://")):
                loop = asyncio.get_running_loop()
                path = await asyncio.wait_for(
                    loop.run_in_executor(_fetch_pool(), self._fetch, icon), FETCH_TIMEOUT_S + 1
                )
            else:
                path = self._local(icon)
        except (OSError, ValueError, TimeoutError, http.client.HTTPException) as exc:
            log.warning(
                "icon not usable; showing the app icon",
                icon=icon[:200],
                reason=str(exc) or type(exc).__name__,
            )
            return self.app_icon
        return path

    def _local(self, icon: str) -> Path:
        if icon.startswith("file://"):
            path = Path(urllib.parse.unquote(urllib.parse.urlparse(icon).path))
        elif icon.startswith("/") and (Path(icon).is_file() or self.app_root is None):
            path = Path(icon)  # html5plus: a system absolute path
        else:
            # uni-app's "/static/logo.png" is the project root's file (uni-app x:
            # UTSAndroid.convert2AbsFullPath) when no such absolute file exists.
            relative = icon.removeprefix("_www/").removeprefix("/")
            if self.app_root is None:
                raise ValueError("a relative icon needs the app_root setting")
            path = self.app_root / relative
            if not path.resolve().is_relative_to(self.app_root.resolve()):
                raise ValueError("a relative icon must stay inside app_root")
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    def _fetch(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        suffix = Path(urllib.parse.urlparse(url).path).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES else ".img"
        cached = self.cache_dir / f"{key}{suffix}"
        if cached.is_file():
            return cached
        request = urllib.request.Request(url, headers={"User-Agent": "unipush-bridge"})
        deadline = _Deadline(FETCH_TIMEOUT_S)
        opener = _opener(deadline)
        try:
            with opener.open(request, timeout=FETCH_TIMEOUT_S) as resp:
                length = resp.headers.get("Content-Length")
                if length is not None and int(length) > MAX_ICON_BYTES:
                    raise ValueError(f"icon larger than {MAX_ICON_BYTES} bytes")
                data = resp.read(MAX_ICON_BYTES + 1)
        except (OSError, http.client.HTTPException):
            if deadline.expired:
                raise TimeoutError(f"icon not fetched within {FETCH_TIMEOUT_S:g} s") from None
            raise
        finally:
            deadline.cancel()
        if deadline.expired:
            raise TimeoutError(f"icon not fetched within {FETCH_TIMEOUT_S:g} s")
        if len(data) > MAX_ICON_BYTES:
            raise ValueError(f"icon larger than {MAX_ICON_BYTES} bytes")
        if length is not None and len(data) != int(length):
            raise ValueError("icon download cut short")  # never cache half an image
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = cached.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(cached)
        return cached

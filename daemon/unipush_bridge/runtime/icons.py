"""Turn uni's icon forms into a local image file, or the app icon when that fails.

uni-app accepts a path relative to the app root, ``_www/...`` (the app root too),
an absolute path or ``file://``; http(s) icons are fetched here with a size and a
time limit and cached by URL, so a slow or huge icon never holds up a notification.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import urllib.parse
import urllib.request
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

MAX_ICON_BYTES = 1024 * 1024
FETCH_TIMEOUT_S = 5.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".bmp")


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
                path = await asyncio.wait_for(
                    asyncio.to_thread(self._fetch, icon), FETCH_TIMEOUT_S + 1
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
        elif icon.startswith("/"):
            path = Path(icon)
        else:
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
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and int(length) > MAX_ICON_BYTES:
                raise ValueError(f"icon larger than {MAX_ICON_BYTES} bytes")
            data = resp.read(MAX_ICON_BYTES + 1)
        if len(data) > MAX_ICON_BYTES:
            raise ValueError(f"icon larger than {MAX_ICON_BYTES} bytes")
        if length is not None and len(data) != int(length):
            raise ValueError("icon download cut short")  # never cache half an image
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = cached.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(cached)
        return cached

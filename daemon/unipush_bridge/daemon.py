"""The composition root: wires store, notifier, bridge, link, local API and (when no
gateway is configured) the embedded gateway, and owns their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

from . import __version__, protocol
from .bridge import Bridge
from .config import DaemonSettings
from .gateway.access import GatewayConfig
from .gateway.server import Gateway
from .link import Link
from .localapi import LocalApiServer
from .notifier import DesktopNotifierBackend
from .store import HELD, Store

log = structlog.get_logger(__name__)

EMBEDDED = "embedded"


def program() -> str:
    """How this process was started, so the printed command pastes as it is."""
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "unipush-bridge" and os.path.isabs(argv0):
        return argv0
    return "unipush-bridge"


def send_command(http_url: str, appid: str, cid: str) -> str:
    return shlex.join(
        [
            program(),
            "send",
            "--gateway-url",
            http_url,
            "--appid",
            appid,
            "--to",
            cid,
            "--title",
            "Hello",
            "--content",
            "from unipush-bridge",
            "--payload",
            '{"hello": 1}',
        ]
    )


class Daemon:
    def __init__(self, settings: DaemonSettings, announce: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.announce = announce
        self.gateway: Gateway | None = None
        self.started_at = time.time()
        self.stop_event = asyncio.Event()

    async def run(self) -> int:
        s = self.settings
        if s.gateway is None:
            self.gateway = Gateway(
                GatewayConfig(
                    host="127.0.0.1",
                    port=s.embedded_port,
                    data_dir=s.state_dir / "embedded-gateway",
                    client_token=s.client_token,
                )
            )
            await self.gateway.start()
            ws_url = f"ws://127.0.0.1:{self.gateway.port}"
            gateway_key = EMBEDDED
        else:
            ws_url = s.gateway
            gateway_key = protocol.websocket_url(s.gateway)
        store = Store(s.state_dir / f"{s.appid}.sqlite3")
        notifier = DesktopNotifierBackend(s.app_name, timeout=s.notify_timeout)
        bridge = Bridge(
            store=store,
            notifier=notifier,
            appid=s.appid,
            gateway_key=gateway_key,
            app_name=s.app_name,
            app_command=s.app_command,
        )
        link = Link(
            ws_url,
            bridge,
            token=s.client_token,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
        )
        api = LocalApiServer(bridge, s.socket_path, lambda: self.status(bridge, link))
        tasks: list[asyncio.Task[Any]] = []
        try:
            await notifier.start()
            await api.start()
            log.info("local API listening", socket=str(s.socket_path))
            await bridge.replay_unfinished()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
            tasks.append(loop.create_task(link.run()))
            tasks.append(loop.create_task(self._announce(bridge, ws_url)))
            await self.stop_event.wait()
            log.info("stopping")
        finally:
            link.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await api.stop()
            if self.gateway is not None:
                await self.gateway.stop()
            store.close()
        return 0

    async def _announce(self, bridge: Bridge, ws_url: str) -> None:
        cid = await bridge.get_push_client_id(timeout=None)
        http = protocol.http_url(ws_url)
        self.announce(f"cid: {cid}")
        self.announce(f"send a push: {send_command(http, bridge.appid, cid)}")
        listen = shlex.join([program(), "listen", "--socket", str(self.settings.socket_path)])
        self.announce(f"listen: {listen}")

    def status(self, bridge: Bridge, link: Link) -> dict[str, Any]:
        return {
            "version": __version__,
            "pid": os.getpid(),
            "appid": bridge.appid,
            "cid": bridge.cid,
            "gateway": link.url,
            "embedded_gateway": self.gateway is not None,
            "connection": link.status.as_dict(),
            "listeners": len(bridge.listeners),
            "notifications": "available" if bridge.notifier.available else "unavailable",
            "held_for_listener": bridge.store.count(HELD),
            "last_message_at": bridge.last_message_at,
            "counters": dict(bridge.counters),
            "socket": str(self.settings.socket_path),
            "started_at": self.started_at,
        }

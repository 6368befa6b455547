"""The composition root: wires store, notifier, core and driver, link, local API and
(when no gateway is configured) the embedded gateway, and owns their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shlex
import shutil
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from .. import __version__, logs
from ..errors import UnipushError
from ..paths import default_socket
from ..wire import gateway as protocol
from . import lock
from .core import Config, Core, parse_quiet_hours
from .driver import Driver, Media, new_id
from .icons import IconResolver
from .link import Link
from .localapi import LocalApiServer
from .notifier import DesktopNotifierBackend
from .options import DaemonOptions
from .sdnotify import SdNotify, status_text
from .session import ReceiptEvent
from .sleepwatch import SleepWatcher
from .store import Store

if TYPE_CHECKING:
    from ..gateway.server import Gateway
    from .web import WebEndpoint

#: Named for the module even when it runs as `python -m` (then __name__ is "__main__",
#: which says nothing in a journal).
log = structlog.get_logger("unipush_bridge.runtime.daemon")

EMBEDDED = "embedded"
#: How long SIGTERM waits for the batch in hand before cutting it short.
STOP_GRACE_S = 3.0


def program() -> str:
    """The command to print, so it pastes as it is: the console script beside this
    interpreter (a venv's bin/) when that one is not already what PATH finds."""
    beside = Path(sys.executable).parent / "unipush-bridge"
    if beside.is_file() and shutil.which("unipush-bridge") != str(beside):
        return str(beside)
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


#: Settings SIGHUP cannot change in a running daemon (they name its identity and sockets).
RESTART_ONLY = DaemonOptions.restart_only()


def core_config(s: DaemonOptions) -> Config:
    return Config(
        s.app_name,
        tuple(s.app_command),
        s.flood_threshold,
        s.flood_window,
        parse_quiet_hours(s.quiet_hours),
        s.quiet_breakthrough,
        round(s.max_held_mib * 1024 * 1024),
        s.appid,
    )


def media(s: DaemonOptions) -> Media:
    icons = IconResolver(s.app_root, s.app_icon, s.state_dir / "icons")
    return Media(icons, s.sounds_dir, s.history_size)


class Daemon:
    def __init__(self, settings: DaemonOptions, announce: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.announce = announce
        self.gateway: Gateway | None = None
        self.started_at = time.time()
        self.stop_event = asyncio.Event()
        self.driver: Driver | None = None
        self.link: Link | None = None
        self.notifier: DesktopNotifierBackend | None = None
        self.web: WebEndpoint | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        self.sd = SdNotify()  # systemd Type=notify; a no-op elsewhere

    async def run(self) -> int:
        s = self.settings
        # Before anything else: a refused start must touch nothing of a running daemon.
        instance = lock.acquire(s.state_dir, s.appid, program())
        # Then the stop signals: one that lands while the gateway, the socket or the
        # store are still coming up must stop cleanly, not kill the process half-made.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        try:
            return await self._run(instance)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            instance.release()

    async def _run(self, instance: lock.InstanceLock) -> int:
        s = self.settings
        if s.gateway is None:
            from ..gateway.access import GatewayConfig
            from ..gateway.server import Gateway  # aiohttp only when the gateway is ours

            self.gateway = Gateway(
                GatewayConfig(
                    host="127.0.0.1",
                    port=s.embedded_port,
                    data_dir=s.state_dir / "embedded-gateway",
                    client_token=s.client_token,
                )
            )
            try:
                await self.gateway.start()
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortTaken(s, s.embedded_port) from exc
                raise
            ws_url = f"ws://127.0.0.1:{self.gateway.port}"
            gateway_key = EMBEDDED
        else:
            ws_url = s.gateway
            gateway_key = protocol.websocket_url(s.gateway)
        instance.note(
            lock.Holder(
                s.appid,
                os.getpid(),
                str(s.socket_path),
                self.gateway.port if self.gateway else None,
            )
        )
        store = Store(s.state_dir / f"{s.appid}.sqlite3")
        self.notifier = notifier = DesktopNotifierBackend(
            s.app_name, timeout=s.notify_timeout, desktop_entry=s.desktop_entry
        )
        link: Link | None = None

        def receipt(msg_id: str, taskid: str | None, event: ReceiptEvent) -> None:
            if link is not None:
                link.receipt(msg_id, taskid, event)

        self.driver = driver = Driver(
            core=Core(core_config(s), new_id),
            store=store,
            notifier=notifier,
            appid=s.appid,
            gateway_key=gateway_key,
            media=media(s),
            receipts=receipt,
            hold_timeout=s.listener_timeout,
        )
        self.link = link = Link(
            ws_url,
            driver,
            token=s.client_token,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
        )
        link.status.on_change = driver.changes.bump
        api = LocalApiServer(
            driver,
            s.socket_path,
            lambda: self.status(driver, link),
            changes=driver.changes,
            max_connections=s.max_local_connections,
        )
        self.web = web = None
        if s.web_port is not None:  # opt-in; websockets only, already loaded for the link
            from .web import WebEndpoint
            from .webpair import pairs_file

            self.web = web = WebEndpoint(
                api,
                appid=s.appid,
                host=s.web_host,
                port=s.web_port,
                origins=s.web_origins,
                pairs=pairs_file(s.state_dir, s.appid),
                rate=s.web_rate,
            )
        sleep = SleepWatcher(lambda: link.wake("resumed from suspend"), s.sleep_bus)
        link_task: asyncio.Task[None] | None = None
        announce: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            await notifier.start()
            await api.start()
            log.info("local API listening", socket=str(s.socket_path))
            if web is not None:
                await web.start()
            await driver.start()
            loop.add_signal_handler(signal.SIGCONT, link.wake, "SIGCONT (resumed)")
            loop.add_signal_handler(signal.SIGHUP, self._spawn_reload)
            if s.sleep_bus != "off":
                await sleep.start()
            link_task = loop.create_task(link.run())
            announce = loop.create_task(self._announce(driver, ws_url))
            # Socket bound, store open, signals handled: the service is up.
            self.sd.ready(self._sd_status(driver, link))
            sd_task = loop.create_task(
                self.sd.run(lambda: self._sd_status(driver, link), driver.changes)
            )
            await self.stop_event.wait()
            self.sd.stopping()
            sd_task.cancel()
            log.info("stopping")
        finally:
            for sig in (signal.SIGCONT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._shutdown(link, link_task, announce)
            sleep.stop()
            if web is not None:
                await web.stop()
            await api.stop()
            await driver.stop(1.0)
            if self.gateway is not None:
                await self.gateway.stop()
            store.close()
            log.info("stopped")
        return 0

    async def _shutdown(
        self, link: Link, link_task: asyncio.Task[None] | None, announce: asyncio.Task[None] | None
    ) -> None:
        """Let the link finish the batch in hand (it is recorded, acked and handed on
        as one), then stop it; anything cut short stays pending and is replayed."""
        link.stop()
        if announce is not None:
            announce.cancel()
        if link_task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(link_task), STOP_GRACE_S)
        except TimeoutError:
            link_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await link_task

    def _sd_status(self, driver: Driver, link: Link) -> str:
        s = link.status
        return status_text(s.state, driver.inbox()["backlog"], s.last_error)

    async def _reload_notified(self) -> None:
        self.sd.reloading()
        try:
            await self.reload_config()
        finally:
            self.sd.ready()

    def _spawn_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_notified())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload_config(self) -> None:
        """SIGHUP: validate the config again (in a child process, with the command
        that started us) and apply what can change live."""
        argv = self.settings.reload_argv
        if not argv:
            log.warning("config reload is not available for this daemon")
            return
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            log.error(
                "config reload failed; keeping the running config",
                error=err.decode(errors="replace").strip(),
            )
            return
        new = DaemonOptions.from_json(out.decode())
        old = self.settings
        needs_restart = [k for k in RESTART_ONLY if getattr(new, k) != getattr(old, k)]
        if needs_restart:
            log.warning("these settings change only on restart", keys=needs_restart)
        new = new.keeping(old, (*RESTART_ONLY, "reload_argv"))
        logs.setup(new.log_level, new.log_format)
        if self.driver is not None:
            self.driver.reconfigure(core_config(new), media(new))
        if self.link is not None:
            self.link.set_keepalive(new.ping_interval, new.ping_timeout)
        if self.notifier is not None:
            self.notifier.set_timeout(new.notify_timeout)
        self.settings = new
        log.info("config reloaded")

    async def _announce(self, driver: Driver, ws_url: str) -> None:
        cid = await driver.get_push_client_id(timeout=None)
        http = protocol.http_url(ws_url)
        self.announce(f"cid: {cid}")
        self.announce(f"send a push: {send_command(http, driver.appid, cid)}")
        listen = shlex.join(
            [program(), "listen", "--json", "--socket", str(self.settings.socket_path)]
        )
        self.announce(f"listen: {listen}")

    def status(self, driver: Driver, link: Link) -> dict[str, Any]:
        return {
            "version": __version__,
            "pid": os.getpid(),
            "appid": driver.appid,
            "cid": driver.cid,
            "gateway": link.url,
            "embedded_gateway": self.gateway is not None,
            "connection": link.status.as_dict(),
            "listeners": driver.listeners,
            "notifications": "available" if driver.notifier.available else "unavailable",
            "notification_server": self.notifier.describe() if self.notifier else {},
            **driver.inbox(),
            "quiet": driver.get_quiet_hours(),
            "last_message_at": driver.last_message_at,
            "counters": dict(driver.core.counters),
            "socket": str(self.settings.socket_path),
            "web": self.web.url if self.web is not None else None,
            "state_dir": str(self.settings.state_dir),
            "started_at": self.started_at,
        }


class PortTaken(UnipushError):
    """The embedded gateway's port is in use; the text says by whom, when we know.

    When the holder is a daemon for this same appid (one with another state dir: the
    instance lock stops one with the same), the way out is to use that daemon, not a
    second one on another port with a cid of its own (issue 12 item 8)."""

    def __init__(self, s: DaemonOptions, port: int) -> None:
        holder = lock.holder_of_port(s.state_dir, port)
        if holder is not None and holder.appid != s.appid:
            why = (
                f"port {port} is held by the embedded gateway of the running daemon for "
                f"appid {holder.appid} (pid {holder.pid}, socket {holder.socket})"
            )
            super().__init__(f"{why}: pass --embedded-port 0 (any free port) or another port")
            return
        # Its socket is ours (same flags), the appid's default, or one beside it.
        near = sorted(default_socket(s.appid).parent.glob("*.sock"))[:20]
        running = lock.running_daemon((s.socket_path, default_socket(s.appid), *near))
        if running is not None and _holds_port(running, s.appid, port):
            pid, sock = int(running["pid"]), str(running["socket"])
            where = f" with state dir {running['state_dir']}" if running.get("state_dir") else ""
            super().__init__(
                f"a daemon for appid {s.appid} is already running{where} (pid {pid}, "
                f"socket {sock}) and its embedded gateway holds port {port}; "
                f"{lock.use_it(program(), s.appid, sock, pid)}"
            )
            return
        super().__init__(
            f"port {port} is taken by another program: pass --embedded-port 0 "
            "(any free port) or another port"
        )


def _holds_port(status: dict[str, Any], appid: str, port: int) -> bool:
    """Whether a daemon's status says it is ``appid``'s with its embedded gateway on ``port``."""
    if status.get("appid") != appid or not status.get("embedded_gateway"):
        return False
    with contextlib.suppress(ValueError, TypeError):
        return urllib.parse.urlsplit(str(status.get("gateway"))).port == port
    return False


def main(argv: list[str] | None = None) -> int:
    """The daemon process: ``python -m unipush_bridge.runtime.daemon --options-fd N``, started
    by ``unipush-bridge run`` once it has validated the config."""
    import argparse

    parser = argparse.ArgumentParser(prog="unipush-bridge daemon")
    parser.add_argument("--options-fd", type=int, required=True)
    args = parser.parse_args(argv)
    with os.fdopen(args.options_fd, encoding="utf-8") as pipe:
        options = DaemonOptions.from_json(pipe.read())
    logs.setup(options.log_level, options.log_format)
    try:
        return asyncio.run(Daemon(options, announce=lambda line: print(line, flush=True)).run())
    except UnipushError as exc:
        print(f"unipush-bridge run: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        from ..sqlitedb import os_store_error  # a state dir it cannot write, a full disk

        mapped = os_store_error(options.state_dir, exc)
        if mapped is not None:
            print(f"unipush-bridge run: {mapped}", file=sys.stderr)
            return mapped.exit_code
        print(f"unipush-bridge run: {exc.strerror or exc} ({type(exc).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The tray process: watches the daemon over the local API (a long-polled status), keeps
a TrayState, and carries out what the menu asks. It survives the daemon restarting (offline until it
answers again) and a tray host appearing late (see :mod:`.sni`)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from .. import paths
from ..clients.push import PushClient
from ..errors import DaemonUnavailable, ProtocolError, UniApiError
from ..paths import UnsafePath
from . import model
from .sni import SniConnection

log = structlog.get_logger(__name__)

#: How often the tray asks a daemon that cannot be watched (s): one that is gone, or
#: one older than the long-polled status.
POLL_S = 1.0
#: How long one watching status call waits for a change before the tray asks again
#: (s): a daemon frozen mid-wait (SIGSTOP) reads offline within this plus
#: CALL_TIMEOUT_S. Idle, that is one call in 5 s instead of two a second.
WATCH_S = 5.0
#: The shortest time between the starts of two watching calls (s): while pushes stream
#: the count moves many times a second and each call is answered at once, so without it
#: the tray asks (status, history, a menu refresh on the bus) in a tight loop.
WATCH_GAP_S = 0.5
#: How long one poll or menu action may wait for the daemon (s): a daemon that
#: accepts but does not answer (hung, SIGSTOPped) reads offline, not connected.
CALL_TIMEOUT_S = 3.0
#: Clipboard tools tried in order, with their arguments.
CLIPBOARD = (("wl-copy",), ("xclip", "-selection", "clipboard"), ("xsel", "--clipboard", "--input"))


class Tray:
    def __init__(self, appid: str, socket_path: Path) -> None:
        self.state = model.TrayState(appid=appid)  # nothing seen yet: unclicked is unread
        self.socket_path = socket_path
        self.client: PushClient | None = None
        self.sni = SniConnection(lambda: self.state, self.command, self.opened)
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: The last UnsafePath refusal logged (polls repeat it every second).
        self._unsafe = ""
        #: The daemon's change count as last read; None: not watching (offline, or a
        #: daemon without it), so the tray asks every POLL_S.
        self._changes: int | None = None

    async def run(self) -> int:
        """0 once told to stop; 1 when the session bus dropped us: an icon nobody can
        see is no tray, and the user service restarts a tray that exits 1."""
        try:
            await self.sni.start()
        except (OSError, EOFError) as exc:
            if self.sni.bus is None:
                raise  # never reached it: main() says so
            # Taken away mid-start (dbus_fast raises EOFError for a bus that closed
            # while a call waited): the same as losing it later.
            log.error("lost the session bus while starting; exiting", error=repr(exc))
            self.sni.close()
            return 1
        try:
            while not self.stopped.is_set():
                if not self.sni.connected:
                    log.error("lost the session bus; the tray has no icon, exiting")
                    return 1
                started = asyncio.get_running_loop().time()
                await self._unless_stopped(self.poll(watch=True))
                self.sni.refresh()
                pause = POLL_S if self._changes is None else self._gap(started)
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopped.wait(), pause)
        finally:
            if self.client is not None:
                await self.client.close()
            self.sni.close()
        return 0

    @staticmethod
    def _gap(started: float) -> float:
        """What is left of WATCH_GAP_S since the watching call began: nothing after a
        long poll that waited, the rest after one answered at once."""
        return started + WATCH_GAP_S - asyncio.get_running_loop().time()

    async def _unless_stopped(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` but give it up when the tray is told to stop (SIGTERM, Quit),
        so stopping never waits for the daemon."""
        task = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self.stopped.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not task.cancelled():  # a watching poll is given up mid-wait, as it should be
            task.result()

    async def poll(self, watch: bool = False) -> None:
        """Read status and history; ``watch``: first wait (WATCH_S at most) for the
        daemon to say something changed, and read the history only if it did."""
        after = self._changes if watch else None
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                if self.client is None:
                    self.client = PushClient(self.socket_path, self.state.appid)
                    await self.client.connect()
            if after is None:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    status = await self.client.status()
            else:
                async with asyncio.timeout(WATCH_S + CALL_TIMEOUT_S):
                    status = await self.client.status(after=after, timeout=WATCH_S)
            changes = status.get("changes")
            if isinstance(changes, bool) or not isinstance(changes, int):
                changes = None
            if after is None or changes != after:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    entries = await self.client.history(model.MENU_ENTRIES)
            else:
                entries = list(self.state.entries)
        except UnsafePath as exc:  # refused before connecting: say so once, stay up
            if str(exc) != self._unsafe:
                log.warning("the daemon's socket is in an unsafe place; offline", error=str(exc))
            self._unsafe = str(exc)
            self._changes = None
            self.state = self.state._replace(online=False, link="")
            return
        except (DaemonUnavailable, ProtocolError, UniApiError, OSError, TimeoutError) as exc:
            if self.state.online:
                log.info("the daemon is gone; the tray shows offline", error=str(exc) or repr(exc))
            if self.client is not None:
                await self.client.close()
            self.client = None
            self._changes = None
            self.state = self.state._replace(online=False, link="")
            return
        self._unsafe = ""
        self._changes = changes
        quiet = status.get("quiet") or {}
        connection = status.get("connection") or {}
        self.state = self.state._replace(
            online=True,
            link=str(connection.get("state", "")),
            cid=status.get("cid"),
            quiet=bool(quiet.get("active")),
            quiet_unread=int(quiet.get("unread") or 0),
            entries=tuple(entries),
        )

    def opened(self) -> None:
        self.state = self.state._replace(seen_at=time.time())
        self.sni.refresh()

    def command(self, command: model.Command) -> None:
        """From the D-Bus handler: run it as a task, then show its effect at once."""
        task = asyncio.get_running_loop().create_task(self._carry_out(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _carry_out(self, command: model.Command) -> None:
        try:
            match command:
                case model.Quit():
                    self.stopped.set()
                    return
                case model.ClickEntry(push_id):
                    assert self.client is not None
                    async with asyncio.timeout(CALL_TIMEOUT_S):
                        await self.client.click_history(push_id)
                case model.SetQuiet(on):
                    assert self.client is not None
                    async with asyncio.timeout(CALL_TIMEOUT_S):
                        await self.client.set_quiet_hours(on)
                case model.CopyCid(cid):
                    await copy_to_clipboard(cid or "")
                case model.OpenHistory():
                    await open_history(self.state)
        except (
            AssertionError,
            DaemonUnavailable,
            UniApiError,
            UnsafePath,
            OSError,
            TimeoutError,
        ) as exc:
            log.warning("a tray menu action failed", action=type(command).__name__, error=str(exc))
        await self.poll()
        self.sni.refresh()


async def copy_to_clipboard(text: str) -> bool:
    """The first clipboard tool found takes the text; without one it is logged and
    printed, so the user can copy it from there."""
    for argv in CLIPBOARD:
        if shutil.which(argv[0]):
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            proc.stdin.write(text.encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
            # xclip stays to serve the selection: do not wait for it to exit.
            log.info("cid copied to the clipboard", tool=argv[0], cid=text)
            return True
    log.warning("no clipboard tool (wl-copy, xclip, xsel); the cid is", cid=text)
    print(text, flush=True)
    return False


def history_file(appid: str) -> Path:
    """In the socket's runtime dir (``$XDG_RUNTIME_DIR/unipush-bridge``, else the
    per-uid ``$TMPDIR/unipush-bridge-<uid>``): a shared name under /tmp let another
    user make the directory first and read the page or plant a symlink in it."""
    return paths.runtime_dir() / f"history-{appid}.html"


def write_private(path: Path, text: str) -> None:
    """Write ``path`` in a directory only this user may enter (made 0700 if missing,
    checked as the socket's is: raises UnsafePath), through a 0600 temp file renamed
    into place, so no symlink or file already there is written through."""
    paths.make_private_dirs(path.parent)
    paths.check_private_dir(path.parent, "history page directory")
    paths.write_replacing(path, text, ".history-")


async def open_history(state: model.TrayState) -> Path:
    """The history as a page, opened with xdg-open (or its path printed)."""
    path = history_file(state.appid)
    write_private(path, model.history_html(state))
    if shutil.which("xdg-open"):
        await asyncio.create_subprocess_exec(
            "xdg-open",
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    else:
        print(f"history: {path}", file=sys.stderr, flush=True)
    return path


def main(appid: str, socket_path: Path) -> int:
    """`unipush-bridge tray`: exit 0 when Quit is chosen (or on SIGTERM/SIGINT)."""
    tray = Tray(appid, socket_path)

    async def _main() -> int:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, tray.stopped.set)
        return await tray.run()

    try:
        return asyncio.run(_main())
    except OSError as exc:
        print(f"unipush-bridge tray: cannot reach the session bus: {exc}", file=sys.stderr)
        return 1


def cmd_tray(args: object) -> int:
    """The CLI's entry: --appid and --socket as every local command, and --config for
    the appid and socket the daemon's file sets (when the flags do not)."""
    import tomllib

    from ..paths import default_socket

    appid: str = getattr(args, "appid")  # noqa: B009
    socket: Path | None = getattr(args, "socket")  # noqa: B009
    config: Path | None = getattr(args, "config")  # noqa: B009
    argv: list[str] = getattr(args, "argv", [])
    if config is not None:
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            print(f"unipush-bridge tray: --config {config}: {exc}", file=sys.stderr)
            return 2
        if "--appid" not in argv and isinstance(data.get("appid"), str):
            appid = data["appid"]
        if socket is None and isinstance(data.get("socket"), str):
            socket = Path(data["socket"]).expanduser()
    return main(appid, socket if socket is not None else default_socket(appid))

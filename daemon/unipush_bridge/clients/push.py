"""Python client for a running daemon; calls read like uni's push API.

    async with PushClient.for_appid("__UNI__DESKTOP") as push:
        cid = (await push.get_push_client_id())["cid"]
        await push.on_push_message(lambda res: print(res["type"], res["data"]))
        await push.create_push_message(content="hello", payload={"k": 1})
        if "news" not in await push.get_channel_manager().get_all_channels(): ...

Each call takes uni's optional ``success``/``fail``/``complete`` callbacks. A failed
call that neither ``fail`` nor ``complete`` saw raises :class:`UniApiError`, as uni's
promise rejects. :class:`SyncPushClient` offers the same calls without asyncio. Every line
on the socket is built and read by :mod:`..wire.local`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError, Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..errors import DaemonUnavailable, ProtocolError, UniApiError
from ..paths import DEFAULT_APPID, UnsafePath, check_peer, check_socket_dir, default_socket
from ..wire.local import (
    MAX_LINE,
    Event,
    Request,
    encode_ack,
    encode_request,
    is_fail,
    parse_daemon_line,
)

__all__ = [
    "Callback",
    "ChannelManager",
    "DaemonUnavailable",
    "PushClient",
    "SyncChannelManager",
    "SyncPushClient",
    "UniApiError",
    "UnsafePath",
]

Callback = Callable[[dict[str, Any]], Any]
#: Push ids remembered for dropping replays; far more than a daemon can replay at once.
SEEN_IDS = 10_000
#: How long SyncPushClient.close() waits for its loop thread to finish.
CLOSE_TIMEOUT_S = 5.0
T = TypeVar("T")
#: Subscribing with acknowledgements: the daemon keeps an event until the app has it.
SUBSCRIBE = {"ack": True}


class _Link:
    """One connection to the daemon and the calls waiting on it, so that a reconnect
    never mixes the answers of an old connection with the new one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.waiting: dict[int | str | None, asyncio.Future[dict[str, Any]]] = {}
        self.task: asyncio.Task[None] | None = None
        #: Push ids the app has and the daemon has not been told yet (sent in one line).
        self.acks: list[str] = []

    def ack(self, push_id: str) -> None:
        """Batched: every ack of one loop turn goes in one line."""
        if not self.acks:
            asyncio.get_running_loop().call_soon(self._send_acks)
        self.acks.append(push_id)

    def _send_acks(self) -> None:
        ids, self.acks = self.acks, []
        if ids and not self.writer.is_closing():
            self.writer.write(encode_ack(ids))

    def fail(self, exc: BaseException) -> None:
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(exc)
        self.waiting.clear()


class PushClient:
    def __init__(self, socket_path: Path | str | None = None, appid: str = DEFAULT_APPID) -> None:
        self._socket_path = Path(socket_path) if socket_path is not None else default_socket(appid)
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._listeners: list[Callback] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._channels = ChannelManager(self)

    @classmethod
    def for_appid(cls, appid: str = DEFAULT_APPID) -> PushClient:
        """The client of the daemon serving ``appid`` at its default socket."""
        return cls(default_socket(appid))

    @property
    def socket_path(self) -> Path:
        return self._socket_path

    async def connect(self) -> PushClient:
        """Connect if not connected. A client that had listeners subscribes again by
        itself, keeping the push ids it has seen, so a replayed push is dropped."""
        while self._connecting is not None:
            await asyncio.shield(self._connecting)
        if self._link is None:
            task = asyncio.ensure_future(self._open())
            self._connecting = task
            task.add_done_callback(self._connected)
            await asyncio.shield(task)
        return self

    async def close(self) -> None:
        """Drop the connection; idempotent. Listeners stay registered: a later call
        (or :meth:`connect`) reconnects and subscribes them again."""
        if (connecting := self._connecting) is not None:  # or it would connect after us
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
        link, self._link = self._link, None
        if link is None:
            return
        link.fail(DaemonUnavailable(f"the client of {self._socket_path} was closed"))
        link.writer.close()
        with contextlib.suppress(Exception):
            await link.writer.wait_closed()
        if link.task is not None:
            link.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link.task

    async def wait_closed(self) -> None:
        """Return when the daemon goes away (for listeners that run until then)."""
        if self._link is not None and self._link.task is not None:
            await asyncio.wait({self._link.task})  # returns, not raises, if close() ends it

    async def __aenter__(self) -> PushClient:
        return await self.connect()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # uni's API ----------------------------------------------------------------------

    async def get_push_client_id(
        self,
        *,
        timeout: float | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        """``{"cid", "errMsg"}``; waits up to ``timeout`` s (the daemon's default if
        None) for a registration still under way."""
        params = {} if timeout is None else {"timeout": timeout}
        return await self._api("getPushClientId", params, success, fail, complete)

    async def on_push_message(self, callback: Callback) -> None:
        """Registering the same callback twice keeps one listener, as in uni."""
        if callback in self._listeners:
            return
        self._listeners.append(callback)
        if len(self._listeners) > 1:
            return
        if self._link is None:
            await self.connect()  # subscribes, as the client now has a listener
        else:
            await self._api("onPushMessage", dict(SUBSCRIBE), None, None, None)

    async def off_push_message(self, callback: Callback | None = None) -> None:
        """Remove ``callback``, or every listener when called without one."""
        if callback is None:
            if not self._listeners:
                return
            self._listeners.clear()
        elif callback in self._listeners:
            self._listeners.remove(callback)
        else:
            return
        if not self._listeners and self._link is not None:
            await self._api("offPushMessage", {}, None, None, None)

    async def create_push_message(
        self,
        *,
        content: str | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """A local notification; ``options`` are uni's: title, payload, icon, sound,
        cover, delay, when, channelId, category."""
        params = {"content": content, **options} if content is not None else dict(options)
        return await self._api("createPushMessage", params, success, fail, complete)

    def get_channel_manager(self) -> ChannelManager:
        return self._channels

    def get_push_channel_manager(self) -> ChannelManager:
        """uni-app x's name for :meth:`get_channel_manager`: the same manager."""
        return self._channels

    async def status(
        self,
        *,
        after: int | None = None,
        timeout: float | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        """The daemon's health. With ``after`` (the ``changes`` of an earlier answer) it
        is a long poll: answered once something a watcher shows has moved, or after
        ``timeout`` s (the daemon's default 30, at most 60). A daemon older than this
        answers at once and without ``changes``."""
        params: dict[str, Any] = {}
        if after is not None:
            params["after"] = after
        if timeout is not None:
            params["timeout"] = timeout
        return await self._api("status", params, success, fail, complete)

    async def history(
        self,
        limit: int = 20,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[dict[str, Any]]:
        """The last notifications shown: what, when, on which channel, clicked or not."""
        result = await self._api("history", {"limit": limit}, success, fail, complete)
        entries: list[dict[str, Any]] = result.get("entries", [])
        return entries

    async def click_history(
        self,
        push_id: str,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        """The click of a history entry's notification, as if clicked now (the tray)."""
        return await self._api("clickHistory", {"push_id": push_id}, success, fail, complete)

    async def set_quiet_hours(
        self,
        on: bool | None,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        """Quiet hours on or off until changed, or None: follow the schedule again.
        Returns the state after the change (as :meth:`get_quiet_hours`)."""
        result = await self._api("setQuietHours", {"on": on}, success, fail, complete)
        return dict(result.get("quiet", {}))

    async def get_quiet_hours(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        """active, mode (on, off, auto), schedule, breakthrough, unread."""
        result = await self._api("getQuietHours", {}, success, fail, complete)
        return dict(result.get("quiet", {}))

    # plumbing -----------------------------------------------------------------------

    async def _api(
        self,
        method: str,
        params: dict[str, Any],
        success: Callback | None,
        fail: Callback | None,
        complete: Callback | None,
    ) -> dict[str, Any]:
        """uni's callback rule: success or fail, then complete; a failure that no
        ``fail`` or ``complete`` callback saw raises, as uni's promise rejects."""
        result = await self._call(method, params)
        failed = is_fail(result)
        cb = fail if failed else success
        if cb is not None:
            await _maybe_await(cb(result))
        if complete is not None:
            await _maybe_await(complete(result))
        if failed and fail is None and complete is None:
            raise UniApiError(result)
        return result

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._link is None:
            await self.connect()
        link = self._link
        if link is None:  # the daemon went away while we connected
            raise DaemonUnavailable(f"the daemon on {self._socket_path} closed the connection")
        return await self._request(link, method, params)

    async def _request(self, link: _Link, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        link.waiting[rid] = fut
        try:
            try:
                link.writer.write(encode_request(Request(rid, method, params)))
                await link.writer.drain()
            except OSError as exc:  # ConnectionResetError, BrokenPipeError from drain()
                raise DaemonUnavailable(
                    f"the daemon on {self._socket_path} closed the connection"
                ) from exc
            return await fut
        finally:
            link.waiting.pop(rid, None)

    async def _open(self) -> None:
        """Connect, but only to a daemon of this user in a directory nobody else
        controls: a squatter there would read what the app sends and could feed it a
        fake cid and fake clicks. Raises UnsafePath before anything is written."""
        self._check_place()
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(self._socket_path), limit=MAX_LINE
            )
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnavailable(
                f"no daemon is listening on {self._socket_path} (start one with "
                f"`unipush-bridge run`)"
            ) from exc
        except OSError as exc:
            raise DaemonUnavailable(
                f"cannot reach the daemon on {self._socket_path}: {exc}"
            ) from exc
        try:
            check_peer(writer.get_extra_info("socket"), f"the daemon on {self._socket_path}")
        except UnsafePath:
            writer.close()
            raise
        except OSError as exc:
            writer.close()
            raise DaemonUnavailable(
                f"cannot tell who listens on {self._socket_path}: {exc}"
            ) from exc
        link = _Link(reader, writer)
        link.task = asyncio.get_running_loop().create_task(self._read(link))
        self._link = link
        if self._listeners:  # reconnected: subscribe again, keeping the seen ids
            result = await self._request(link, "onPushMessage", dict(SUBSCRIBE))
            if is_fail(result):
                raise UniApiError(result)

    def _check_place(self) -> None:
        """A few lstat calls: quick enough for the loop. A missing directory is left
        to connect(), which says no daemon is listening."""
        if os.path.lexists(self._socket_path.parent):
            check_socket_dir(self._socket_path)

    def _connected(self, task: asyncio.Task[None]) -> None:
        self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def _read(self, link: _Link) -> None:
        lost: BaseException = DaemonUnavailable(
            f"the daemon on {self._socket_path} closed the connection"
        )
        try:
            while True:
                try:
                    line = await link.reader.readline()
                except ValueError:
                    lost = ProtocolError(f"a line from the daemon is over {MAX_LINE} bytes")
                    break
                except OSError:
                    break
                if not line:
                    break
                try:
                    msg = parse_daemon_line(line)
                except ProtocolError as exc:
                    lost = exc
                    break
                if isinstance(msg, Event):
                    if self._first_time(msg.push_id):
                        self._dispatch(msg.data, msg.push_id, link)
                    elif msg.push_id is not None:
                        link.ack(msg.push_id)  # had it already: the daemon may forget it
                elif (fut := link.waiting.pop(msg.id, None)) is not None and not fut.done():
                    fut.set_result(msg.result)
                elif msg.id is None and msg.failed:  # a refusal (say, at the connection cap)
                    lost = DaemonUnavailable(
                        f"the daemon on {self._socket_path} refused: {msg.result['errMsg']}"
                    )
        finally:
            link.fail(lost)
            link.writer.close()
            if self._link is link:
                self._link = None

    def _first_time(self, push_id: str | None) -> bool:
        """At-least-once from the daemon, exactly once to callbacks: a push the daemon
        replays after a crash carries the same push_id and is dropped here."""
        if push_id is None:
            return True
        if push_id in self._seen:
            return False
        self._seen[push_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def _dispatch(self, event: dict[str, Any], push_id: str | None, link: _Link) -> None:
        """Every callback gets the event (with its ``push_id``, so an app can drop one
        across its own restarts); once they all returned, it is acknowledged. A listener
        that raises is reported, not allowed to end the connection, and counts as done.
        As in uni, a plain callback that sets ``res["stopped"] = True`` keeps a
        ``receive`` from the callbacks after it (an async one runs too late to); each
        gets its own ``click`` object (uni's invokePushCallback makes one per listener)."""
        base = {**event, "push_id": push_id} if push_id is not None else dict(event)
        click = base.get("type") == "click"
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[Any]] = []
        event = base
        for callback in list(self._listeners):
            if click:
                event = dict(base)
            try:
                result = callback(event)
            except Exception as exc:
                loop.call_exception_handler(
                    {"message": "an onPushMessage listener raised", "exception": exc}
                )
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_done)
                pending.append(task)
            if event.get("stopped") and event.get("type") == "receive":
                break
        if push_id is None:
            return
        if not pending:
            link.ack(push_id)
            return
        done = asyncio.gather(*pending, return_exceptions=True)
        done.add_done_callback(lambda _: link.ack(push_id))

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            task.get_loop().call_exception_handler(
                {"message": "an onPushMessage listener raised", "exception": exc, "task": task}
            )


class ChannelManager:
    """uni.getChannelManager(): channels are created once and never change."""

    def __init__(self, client: PushClient) -> None:
        self._client = client

    async def set_push_channel(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """channelId and channelDesc required; soundName, enableLights, enableVibration,
        importance (2/3/4), lockscreenVisibility as in uni."""
        return await self._client._api("setPushChannel", options, success, fail, complete)

    async def get_all_channels(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[str]:
        """The channelIds, as uni answers them: apps test ``"id" in channels``."""
        result = await self._client._api("getAllChannels", {}, success, fail, complete)
        channels = result.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ProtocolError("getAllChannels must answer channels as channelId strings")
        return channels

    async def get_channel_details(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[dict[str, Any]]:
        """Each channel's settings: channelId, channelDesc, soundName, enableLights,
        enableVibration, importance, lockscreenVisibility."""
        result = await self._client._api("getChannelDetails", {}, success, fail, complete)
        channels = result.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
            raise ProtocolError("getChannelDetails must answer channels as objects")
        return channels


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class SyncPushClient:
    """The same calls without asyncio: a private loop runs in a daemon thread, and
    listener and success/fail/complete callbacks run on that thread (so they must not
    call this client back: that would wait on itself). The constructor connects, so
    a missing daemon shows at once; after :meth:`close` a call connects again."""

    def __init__(self, socket_path: Path | str | None = None, appid: str = DEFAULT_APPID) -> None:
        self._client = PushClient(socket_path, appid)
        self._channels = SyncChannelManager(self)
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        try:
            self.connect()
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_appid(cls, appid: str = DEFAULT_APPID) -> SyncPushClient:
        """The client of the daemon serving ``appid`` at its default socket."""
        return cls(default_socket(appid))

    @property
    def socket_path(self) -> Path:
        return self._client.socket_path

    def connect(self) -> SyncPushClient:
        self._run(self._client.connect())
        return self

    def close(self) -> None:
        """Close the connection and stop the loop thread; idempotent."""
        with self._guard:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        self._refuse_own_thread(thread)
        try:
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                done.result(timeout=CLOSE_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=CLOSE_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()

    def wait_closed(self) -> None:
        """Block until the daemon goes away (or another thread closes this client)."""
        with contextlib.suppress(DaemonUnavailable):
            self._run(self._client.wait_closed())

    def __enter__(self) -> SyncPushClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # uni's API ----------------------------------------------------------------------

    def get_push_client_id(
        self,
        *,
        timeout: float | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._client.get_push_client_id(
                timeout=timeout, success=success, fail=fail, complete=complete
            )
        )

    def on_push_message(self, callback: Callback) -> None:
        self._run(self._client.on_push_message(callback))

    def off_push_message(self, callback: Callback | None = None) -> None:
        self._run(self._client.off_push_message(callback))

    def create_push_message(
        self,
        *,
        content: str | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return self._run(
            self._client.create_push_message(
                content=content, success=success, fail=fail, complete=complete, **options
            )
        )

    def get_channel_manager(self) -> SyncChannelManager:
        return self._channels

    def get_push_channel_manager(self) -> SyncChannelManager:
        """uni-app x's name for :meth:`get_channel_manager`: the same manager."""
        return self._channels

    def status(
        self,
        *,
        after: int | None = None,
        timeout: float | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._client.status(
                after=after, timeout=timeout, success=success, fail=fail, complete=complete
            )
        )

    def history(
        self,
        limit: int = 20,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[dict[str, Any]]:
        return self._run(self._client.history(limit, success=success, fail=fail, complete=complete))

    def click_history(
        self,
        push_id: str,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._client.click_history(push_id, success=success, fail=fail, complete=complete)
        )

    def set_quiet_hours(
        self,
        on: bool | None,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._client.set_quiet_hours(on, success=success, fail=fail, complete=complete)
        )

    def get_quiet_hours(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._client.get_quiet_hours(success=success, fail=fail, complete=complete)
        )

    # plumbing -----------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop thread, starting one if there is none (first use,
        or after close)."""
        with self._guard:
            if self._loop is None or self._thread is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, daemon=True, name="unipush-client"
                )
                self._thread.start()
            loop, thread = self._loop, self._thread
        try:
            self._refuse_own_thread(thread)
        except RuntimeError:
            coro.close()
            raise
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except CancelledError:  # close() from another thread ended the call
            raise DaemonUnavailable(f"the client of {self.socket_path} was closed") from None

    def _refuse_own_thread(self, thread: threading.Thread) -> None:
        if threading.current_thread() is thread:
            raise RuntimeError(
                "a SyncPushClient cannot be called from its own callbacks (it would wait "
                "on itself); use PushClient in async code"
            )

    async def _shutdown(self) -> None:
        """Close the connection, then end what the listeners left running, as
        asyncio.run() does, so the loop closes cleanly."""
        await self._client.close()
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


class SyncChannelManager:
    """:class:`ChannelManager` without asyncio, for :class:`SyncPushClient`."""

    def __init__(self, client: SyncPushClient) -> None:
        self._client = client

    def _async(self) -> ChannelManager:
        return self._client._client.get_channel_manager()

    def set_push_channel(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return self._client._run(
            self._async().set_push_channel(success=success, fail=fail, complete=complete, **options)
        )

    def get_all_channels(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[str]:
        return self._client._run(
            self._async().get_all_channels(success=success, fail=fail, complete=complete)
        )

    def get_channel_details(
        self,
        *,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
    ) -> list[dict[str, Any]]:
        return self._client._run(
            self._async().get_channel_details(success=success, fail=fail, complete=complete)
        )

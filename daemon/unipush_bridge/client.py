"""Python client for a running daemon; calls read like uni's push API.

    async with PushClient.for_appid("__UNI__DESKTOP") as push:
        cid = (await push.get_push_client_id())["cid"]
        await push.on_push_message(lambda res: print(res["type"], res["data"]))
        await push.create_push_message(content="hello", payload={"k": 1})

Each call takes uni's optional ``success``/``fail``/``complete`` callbacks. Without
a ``fail`` callback a failed call raises :class:`UniApiError`, as uni's promise
rejects. :class:`SyncPushClient` offers the same calls without asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .paths import DEFAULT_APPID, default_socket

Callback = Callable[[dict[str, Any]], Any]
#: Push ids remembered for dropping replays; far more than a daemon can replay at once.
SEEN_IDS = 10_000
T = TypeVar("T")


class UniApiError(RuntimeError):
    """A call answered ``<api>:fail <reason>``; ``result`` holds the whole answer."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("errMsg", "fail"))
        self.result = result


class DaemonUnavailable(ConnectionError):
    """No daemon is listening on the socket."""


class PushClient:
    def __init__(self, socket_path: Path | str) -> None:
        self.socket_path = Path(socket_path)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callback] = []
        self._reader_task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def for_appid(cls, appid: str = DEFAULT_APPID) -> PushClient:
        return cls(default_socket(appid))

    async def connect(self) -> PushClient:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                str(self.socket_path), limit=1024 * 1024
            )
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnavailable(
                f"no daemon is listening on {self.socket_path} (start one with "
                f"`unipush-bridge run`)"
            ) from exc
        self._reader_task = asyncio.get_running_loop().create_task(self._read())
        if self._listeners:  # reconnected: subscribe again, keeping the seen ids
            await self._api("onPushMessage", {}, {})
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def __aenter__(self) -> PushClient:
        return await self.connect()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # uni's API ----------------------------------------------------------------------

    async def get_push_client_id(
        self, *, timeout: float | None = None, **callbacks: Callback
    ) -> dict[str, Any]:
        params = {} if timeout is None else {"timeout": timeout}
        return await self._api("getPushClientId", params, callbacks)

    async def on_push_message(self, callback: Callback) -> None:
        """Registering the same callback twice keeps one listener, as in uni."""
        if callback in self._listeners:
            return
        self._listeners.append(callback)
        if len(self._listeners) == 1:
            await self._api("onPushMessage", {}, {})

    async def off_push_message(self, callback: Callback | None = None) -> None:
        """Remove ``callback``, or every listener when called without one."""
        if callback is None:
            self._listeners.clear()
        elif callback in self._listeners:
            self._listeners.remove(callback)
        else:
            return
        if not self._listeners:
            await self._api("offPushMessage", {}, {})

    async def create_push_message(
        self,
        *,
        content: str | None = None,
        success: Callback | None = None,
        fail: Callback | None = None,
        complete: Callback | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        params = {"content": content, **options} if content is not None else dict(options)
        callbacks = {
            k: v
            for k, v in (("success", success), ("fail", fail), ("complete", complete))
            if v is not None
        }
        return await self._api("createPushMessage", params, callbacks)

    async def status(self) -> dict[str, Any]:
        return await self._api("status", {}, {})

    def get_channel_manager(self) -> ChannelManager:
        return ChannelManager(self)

    async def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last notifications shown: what, when, on which channel, clicked or not."""
        entries: list[dict[str, Any]] = (await self._api("history", {"limit": limit}, {}))[
            "entries"
        ]
        return entries

    # plumbing -----------------------------------------------------------------------

    async def _api(
        self, method: str, params: dict[str, Any], callbacks: dict[str, Callback]
    ) -> dict[str, Any]:
        result = await self._call(method, params)
        failed = ":fail" in str(result.get("errMsg", ""))
        cb = callbacks.get("fail" if failed else "success")
        if cb is not None:
            await _maybe_await(cb(result))
        if "complete" in callbacks:
            await _maybe_await(callbacks["complete"](result))
        if failed and "fail" not in callbacks:
            raise UniApiError(result)
        return result

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._writer is None:
            await self.connect()
        assert self._writer is not None
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        line = json.dumps({"id": rid, "method": method, "params": params}, ensure_ascii=False)
        self._writer.write(line.encode() + b"\n")
        await self._writer.drain()
        return await fut

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                if "event" in msg:
                    if self._first_time(msg.get("id")):
                        self._dispatch(msg["data"])
                elif (fut := self._waiting.pop(msg.get("id"), None)) is not None:
                    if "result" in msg:
                        fut.set_result(msg["result"])
                    else:
                        fut.set_exception(RuntimeError(msg.get("error", "bad answer")))
        finally:
            lost = DaemonUnavailable("the daemon closed the connection")
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(lost)
            self._waiting.clear()

    def _first_time(self, msg_id: str | None) -> bool:
        """At-least-once from the daemon, exactly once to callbacks: a push the daemon
        replays after a crash carries the same id and is dropped here."""
        if msg_id is None:
            return True
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def _dispatch(self, event: dict[str, Any]) -> None:
        for callback in list(self._listeners):
            result = callback(event)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)

    async def wait_closed(self) -> None:
        """Return when the daemon goes away (for listeners that run until then)."""
        if self._reader_task is not None:
            await asyncio.shield(self._reader_task)


class ChannelManager:
    """uni.getChannelManager(): channels are created once and never change."""

    def __init__(self, client: PushClient) -> None:
        self._client = client

    async def set_push_channel(self, **options: Any) -> dict[str, Any]:
        """channelId and channelDesc required; soundName, enableLights, enableVibration,
        importance (2/3/4), lockscreenVisibility as in uni."""
        return await self._client._api("setPushChannel", options, {})

    async def get_all_channels(self) -> list[dict[str, Any]]:
        channels: list[dict[str, Any]] = (await self._client._api("getAllChannels", {}, {}))[
            "channels"
        ]
        return channels


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class SyncPushClient:
    """The same calls without asyncio: a private loop runs in a daemon thread,
    and listener callbacks run on that thread."""

    def __init__(self, socket_path: Path | str | None = None, appid: str = DEFAULT_APPID) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="unipush-client"
        )
        self._thread.start()
        path = Path(socket_path) if socket_path is not None else default_socket(appid)
        self._client = PushClient(path)
        self._run(self._client.connect())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def get_push_client_id(self, **kwargs: Any) -> dict[str, Any]:
        return self._run(self._client.get_push_client_id(**kwargs))

    def on_push_message(self, callback: Callback) -> None:
        self._run(self._client.on_push_message(callback))

    def off_push_message(self, callback: Callback | None = None) -> None:
        self._run(self._client.off_push_message(callback))

    def create_push_message(self, **kwargs: Any) -> dict[str, Any]:
        return self._run(self._client.create_push_message(**kwargs))

    def status(self) -> dict[str, Any]:
        return self._run(self._client.status())

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._run(self._client.history(limit))

    def set_push_channel(self, **options: Any) -> dict[str, Any]:
        """getChannelManager().setPushChannel, without asyncio."""
        return self._run(self._client.get_channel_manager().set_push_channel(**options))

    def get_all_channels(self) -> list[dict[str, Any]]:
        return self._run(self._client.get_channel_manager().get_all_channels())

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncPushClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

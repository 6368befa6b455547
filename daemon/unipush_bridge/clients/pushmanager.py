"""uniCloud.getPushManager for Python: server code that reads like uniCloud's.

    push = get_push_manager("__UNI__DESKTOP", "http://127.0.0.1:8787", secret)
    res = await push.sendMessage({"push_clientid": cid, "title": "Hi", "content": "...",
                                  "payload": {"path": "/pages/order"}})
    if res["errCode"] == 0: ...

Every method takes its argument exactly as the uniCloud method does and resolves to
uni's ``{errCode, errMsg, data}``; a failure is an answer, not an exception, as on
uniCloud. Only a gateway that cannot be reached raises (:class:`GatewayUnreachable`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from ..errors import GatewayUnreachable

__all__ = ["GatewayUnreachable", "PushManager", "get_push_manager"]

Answer = dict[str, Any]


def get_push_manager(
    app_id: str, url: str = "http://127.0.0.1:8787", secret: str | None = None
) -> PushManager:
    return PushManager(app_id, url, secret)


class PushManager:
    def __init__(self, app_id: str, url: str, secret: str | None = None) -> None:
        self.app_id = app_id
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._http: aiohttp.ClientSession | None = None

    async def call(self, method: str, arg: Any = None) -> Answer:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        endpoint = f"{self.url}/api/{quote(self.app_id, safe='')}/{quote(method, safe='')}"
        try:
            async with self._http.post(endpoint, json=arg) as resp:
                answer: Answer = await resp.json(content_type=None)
                return answer
        except aiohttp.ClientConnectionError as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.url}: {exc}") from exc

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> PushManager:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # uniCloud.getPushManager's methods, by their uni names --------------------------------

    async def sendMessage(self, arg: dict[str, Any]) -> Answer:
        return await self.call("sendMessage", arg)

    async def cidBindAlias(self, arg: list[dict[str, str]] | dict[str, Any]) -> Answer:
        return await self.call("cidBindAlias", arg)

    async def getAliasByCid(self, cid: str) -> Answer:
        return await self.call("getAliasByCid", cid)

    async def getCidByAlias(self, alias: str) -> Answer:
        return await self.call("getCidByAlias", alias)

    async def unboundAlias(self, arg: list[dict[str, str]] | dict[str, Any]) -> Answer:
        return await self.call("unboundAlias", arg)

    async def unboundAllAlias(self, alias: str) -> Answer:
        return await self.call("unboundAllAlias", alias)

    async def cidBindCustomTags(self, arg: dict[str, Any]) -> Answer:
        return await self.call("cidBindCustomTags", arg)

    async def cidsBindCustomTag(self, arg: dict[str, Any]) -> Answer:
        return await self.call("cidsBindCustomTag", arg)

    async def cidsUnboundCustomTag(self, arg: dict[str, Any]) -> Answer:
        return await self.call("cidsUnboundCustomTag", arg)

    async def searchCustomTagByCid(self, cid: str) -> Answer:
        return await self.call("searchCustomTagByCid", cid)

    async def getClientStatusByCid(self, cids: str | list[str]) -> Answer:
        return await self.call("getClientStatusByCid", cids)

    async def getClientDetailByCid(self, cids: str | list[str]) -> Answer:
        return await self.call("getClientDetailByCid", cids)

    async def getReport(self, arg: dict[str, Any] | str) -> Answer:
        return await self.call("getReport", arg)

    async def getReportByGroupName(self, group_name: str) -> Answer:
        return await self.call("getReportByGroupName", group_name)

    async def getTodayReport(self) -> Answer:
        return await self.call("getTodayReport")

    async def bindUniIdDevice(self, arg: dict[str, Any]) -> Answer:
        """Gateway extension: what uniCloud keeps in uni-id-device / opendb-device."""
        return await self.call("bindUniIdDevice", arg)

"""uniCloud.getPushManager for Python: server code that reads like uniCloud's.

    push = get_push_manager("__UNI__DESKTOP", "http://127.0.0.1:8787", secret)
    res = await push.sendMessage({"push_clientid": cid, "title": "Hi", "content": "...",
                                  "payload": {"path": "/pages/order"}})
    if res["errCode"] == 0: ...

Every method takes its argument exactly as the uniCloud method does and resolves to
uni's ``{errCode, errMsg, data}``; a failure is an answer, not an exception, as on
uniCloud. Only a gateway that cannot be reached, or a URL where something else answers,
raises (:class:`GatewayUnreachable`). aiohttp loads on the first call, so the CLI's
``send`` can use :func:`read_envelope` without it.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import GatewayUnreachable
from ..wire.strictjson import js_default

if TYPE_CHECKING:
    import aiohttp

__all__ = ["GatewayUnreachable", "PushManager", "get_push_manager", "read_envelope"]

Answer = dict[str, Any]


def read_envelope(
    url: str, status: int, content_type: str | None, body: bytes, hint: str = "check the URL"
) -> Answer:
    """The gateway's answer, or GatewayUnreachable naming the URL and the HTTP status
    when what answered is not a unipush-bridge gateway (another web server, a wrong
    path, an empty 404): every answer of the gateway, failures too, is uni's
    ``{errCode, errMsg, data}`` envelope."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        answer = None
    if isinstance(answer, dict) and "errCode" in answer and "errMsg" in answer:
        return answer
    what = f"{len(body)} bytes of {content_type}" if body else "an empty body"
    raise GatewayUnreachable(
        f"{url} answered HTTP {status} with {what}, not a uni envelope "
        f"{{errCode, errMsg, data}}: this is not a unipush-bridge gateway ({hint}; "
        "give the gateway's base URL, such as http://127.0.0.1:8787)"
    )


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
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        endpoint = f"{self.url}/api/{quote(self.app_id, safe='')}/{quote(method, safe='')}"
        # As uniCloud's JSON.stringify: a datetime (a Date there) is its UTC ISO text.
        sent = None if arg is None else json.dumps(arg, ensure_ascii=False, default=js_default)
        headers = None if sent is None else {"Content-Type": "application/json"}
        data = None if sent is None else sent.encode()
        try:
            async with self._http.post(endpoint, data=data, headers=headers) as resp:
                body = await resp.read()
                ctype = resp.headers.get("Content-Type")
                return read_envelope(endpoint, resp.status, ctype, body, "check the url")
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

    async def getReportByDate(self, date: str) -> Answer:
        return await self.call("getReportByDate", date)

    async def bindUniIdDevice(self, arg: dict[str, Any]) -> Answer:
        """Gateway extension: what uniCloud keeps in uni-id-device / opendb-device."""
        return await self.call("bindUniIdDevice", arg)

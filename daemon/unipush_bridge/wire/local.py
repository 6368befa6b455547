"""The local API's wire format: one JSON object per line over the daemon's Unix socket.

    request  {"id": 7, "method": "createPushMessage", "params": {...}}
    answer   {"id": 7, "result": {"errMsg": "createPushMessage:ok", ...}}
    event    {"event": "push", "push_id": "<msg id>", "data": {"type": "receive", "data": {}}}

``id`` is only ever the caller's request id, echoed in its answer. ``push_id`` names
the event (a push, or a kept click), so a client can drop one the daemon handed on
twice and acknowledge it:

    ack      {"method": "ack", "params": {"push_ids": ["<msg id>", ...]}}

An ack is one-way (answered only when it is malformed); a client that subscribed with
``{"ack": true}`` sends one after its app has each event, and the daemon hands what it
never acknowledged to another listener. Every answer is uni's: ``errMsg`` is ``<api>:ok`` or
``<api>:fail <reason>``; a line that is not a request at all is answered with the
pseudo-api ``request``. Both the server and the clients build and read lines here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError

#: Longest line either side accepts.
MAX_LINE = 1024 * 1024
#: The api named in answers to lines that are not requests.
NOT_A_REQUEST = "request"
#: The one-way line a client sends once the app has events: not answered (unless bad).
ACK = "ack"

RequestId = int | str | None


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    id: RequestId
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return is_fail(self.result)


@dataclass(frozen=True, slots=True)
class Event:
    """A uni event ``{"type": "receive" | "click", "data": {...}}`` for a listener."""

    data: dict[str, Any]
    push_id: str | None = None


class BadRequest(ProtocolError):
    """A line that cannot be served; ``answer`` is what to send back."""

    def __init__(self, rid: RequestId, api: str, reason: str) -> None:
        super().__init__(reason)
        self.answer = Answer(rid, fail(api, reason))


def ok(api: str, **fields: Any) -> dict[str, Any]:
    return {"errMsg": f"{api}:ok", **fields}


def fail(api: str, reason: str) -> dict[str, Any]:
    return {"errMsg": f"{api}:fail {reason}".rstrip()}


def is_fail(result: dict[str, Any]) -> bool:
    return ":fail" in str(result.get("errMsg", ""))


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# requests (client to daemon) ---------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    return _dumps({"id": request.id, "method": request.method, "params": request.params})


def parse_request(line: bytes | str) -> Request:
    """Raises :class:`BadRequest` with the answer to send, naming what is wrong."""
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BadRequest(None, NOT_A_REQUEST, f"request is not JSON: {reason}") from None
    if not isinstance(raw, dict):
        raise BadRequest(None, NOT_A_REQUEST, "request must be a JSON object")
    rid = raw.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        raise BadRequest(None, NOT_A_REQUEST, "id must be a number or a string")
    method = raw.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequest(rid, NOT_A_REQUEST, "method must be a non-empty string")
    params = raw.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest(rid, method, "params must be an object")
    return Request(rid, method, params)


def encode_ack(push_ids: list[str]) -> bytes:
    """The app has these events (its callbacks returned): the daemon may forget them."""
    return _dumps({"method": ACK, "params": {"push_ids": push_ids}})


def ack_ids(params: dict[str, Any]) -> list[str]:
    """The push ids of an ack's params; raises BadRequest naming the rule."""
    ids = params.get("push_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequest(None, ACK, "push_ids must be a list of strings")
    return ids


# answers and events (daemon to client) -------------------------------------------------------


def encode_answer(answer: Answer) -> bytes:
    return _dumps({"id": answer.id, "result": answer.result})


def encode_event(event: Event) -> bytes:
    line: dict[str, Any] = {"event": "push", "data": event.data}
    if event.push_id is not None:
        line["push_id"] = event.push_id
    return _dumps(line)


def parse_daemon_line(line: bytes | str) -> Answer | Event:
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"line from the daemon is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("line from the daemon must be a JSON object")
    if "event" in raw:
        data, push_id = raw.get("data"), raw.get("push_id")
        if not isinstance(data, dict) or data.get("type") not in ("receive", "click"):
            raise ProtocolError("event.data must be a uni event with type receive or click")
        if push_id is not None and not isinstance(push_id, str):
            raise ProtocolError("event.push_id must be a string")
        return Event(data, push_id)
    result = raw.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("errMsg"), str):
        raise ProtocolError("answer.result must be an object with an errMsg")
    return Answer(raw.get("id"), result)

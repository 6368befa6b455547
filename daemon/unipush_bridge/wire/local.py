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
import sys
from collections import namedtuple

from ..errors import ProtocolError
from .strictjson import finite_float, js_default, reject_constant

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

#: Longest line either side accepts.
MAX_LINE = 1024 * 1024
#: Deepest nesting of objects and arrays a request may have (the request object is 1).
MAX_DEPTH = 32
#: The api named in answers to lines that are not requests.
NOT_A_REQUEST = "request"
#: The one-way line a client sends once the app has events: not answered (unless bad).
ACK = "ack"

RequestId = int | str | None


# Immutable records as named tuples, not dataclasses: importing dataclasses pulls in
# inspect and ast, and typing (for NamedTuple) is ~3 ms more, which the CLI's one-shot
# commands cannot afford (issue 13). So the checker reads the typed NamedTuples and
# the interpreter runs collections.namedtuple, with the same fields.

if TYPE_CHECKING:

    class _RequestFields(NamedTuple):
        id: RequestId
        method: str
        params: dict[str, Any]

    class _AnswerFields(NamedTuple):
        id: RequestId
        result: dict[str, Any]

    class _EventFields(NamedTuple):
        data: dict[str, Any]
        push_id: str | None = None

else:
    _RequestFields = namedtuple("Request", "id method params")
    _AnswerFields = namedtuple("Answer", "id result")
    _EventFields = namedtuple("Event", "data push_id", defaults=(None,))


class Request(_RequestFields):
    """``params`` defaults to a new empty object."""

    __slots__ = ()

    def __new__(cls, id: RequestId, method: str, params: dict[str, Any] | None = None) -> Request:
        return super().__new__(cls, id, method, {} if params is None else params)


class Answer(_AnswerFields):
    __slots__ = ()

    @property
    def failed(self) -> bool:
        return is_fail(self.result)


class Event(_EventFields):
    """A uni event ``{"type": "receive" | "click", "data": {...}}`` for a listener."""

    __slots__ = ()


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
    """One line. A lone surrogate (a sender's ``\\ud800`` escape) is written as the same
    JSON escape, so the line stays valid UTF-8 and reads back as it came; a datetime a
    client passes is written as JSON.stringify writes a Date (js_default)."""
    text = json.dumps(
        obj,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
        default=js_default,
    )
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _decode(line: bytes | str) -> Any:
    """json.loads, with every way a line can fail named in words: not UTF-8 (no
    guessing of UTF-16 or UTF-32), nested too deep, a number too long, NaN."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"request is not valid UTF-8 (byte 0x{line[exc.start]:02x} at offset {exc.start})"
            ) from None
    try:
        raw = json.loads(line, parse_constant=reject_constant, parse_float=finite_float)
    except RecursionError:
        raise ValueError(f"request is nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"request is not JSON: {exc.msg}") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            digits = sys.get_int_max_str_digits()
            raise ValueError(f"a number in the request has more than {digits} digits") from None
        raise ValueError(f"request is not JSON: {exc}") from None
    _check_shape(raw)
    return raw


def _check_shape(value: Any) -> None:
    """Depth at most MAX_DEPTH (uni's fields are shallow; a deep one would break the
    encoding of every answer or event that carries it) and no lone surrogates (they
    cannot be stored or shown). Iterative: the value may be nested deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError(f"request is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                for key, sub in item.items():
                    _check_text(key)
                    stack.append((sub, depth + 1))
            else:
                stack.extend((sub, depth + 1) for sub in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"a string in the request holds a lone surrogate (U+{ord(text[exc.start]):04X}), "
            "which is not text"
        ) from None


# requests (client to daemon) ---------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    return _dumps({"id": request.id, "method": request.method, "params": request.params})


def parse_request(line: bytes | str) -> Request:
    """Raises :class:`BadRequest` with the answer to send, naming what is wrong."""
    try:
        raw = _decode(line)
    except ValueError as exc:
        raise BadRequest(None, NOT_A_REQUEST, str(exc)) from None
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


#: clickHistory {"push_id": <history entry id>}: the click of that entry's notification,
#: as if it were clicked now (the tray's menu of recent notifications).
CLICK_HISTORY = "clickHistory"


# quiet hours ---------------------------------------------------------------------------------

#: The toggle's methods: setQuietHours {"on": true | false | null}, getQuietHours {}.
SET_QUIET = "setQuietHours"
GET_QUIET = "getQuietHours"


def quiet_toggle(params: dict[str, Any]) -> bool | None:
    """setQuietHours's ``on``: true (quiet now), false (not quiet), null (follow the
    schedule). It must be given: a missing ``on`` is a mistake, not "auto"."""
    if "on" not in params:
        raise ValueError("on is required: true, false or null (follow the schedule)")
    on = params["on"]
    if on is not None and not isinstance(on, bool):
        raise ValueError("on must be true, false or null (follow the schedule)")
    return on


# answers and events (daemon to client) -------------------------------------------------------


#: What an answer's own fields (id, errMsg, counts) may take of a line, at most.
ANSWER_OVERHEAD = 4096


def fit_in_line(
    items: list[dict[str, Any]], budget: int = MAX_LINE - ANSWER_OVERHEAD
) -> tuple[list[dict[str, Any]], int]:
    """The items, in their order, that one answer line can carry (``budget`` bytes of
    JSON among them), and how many were left out: each item whole or not at all, so
    a large one costs only itself. Every line is held to MAX_LINE, and clients drop
    a longer one (the whole answer, not the entries that made it long). An item that
    cannot be encoded at all is kept: encoding the answer then fails the call, naming
    why, as for any answer it cannot write."""
    kept: list[dict[str, Any]] = []
    left = budget
    for item in items:
        try:
            size = len(_dumps(item))
        except (ValueError, TypeError, RecursionError):
            size = 0
        if size <= left:  # _dumps' newline stands for the comma between items
            kept.append(item)
            left -= size
    return kept, len(items) - len(kept)


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

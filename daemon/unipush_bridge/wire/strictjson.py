"""JSON as RFC 8259 has it: Python's json reads NaN, Infinity and -Infinity, which no
other end (a browser's JSON.parse, uniCloud's JSON.stringify) writes or reads. Taken
in, such a value is stored and later cannot be encoded for an app: refused at the edge
instead, where the sender hears why. Likewise a ``\\ud800`` escape with no partner,
which Python reads as a lone surrogate: no UTF-8 encoder (SQLite's, D-Bus') takes it."""

from __future__ import annotations

import json
import math
import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # the CLI's fast path imports this module and not typing
    from typing import Any, NoReturn

#: The JSON escape of a UTF-16 surrogate: the only way a lone one gets into text that
#: json parsed from a str (a websocket text frame is strict UTF-8 already).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def js_default(value: Any) -> Any:
    """``default`` for json.dumps in the clients: a datetime as JavaScript's
    JSON.stringify writes a Date (Date.prototype.toJSON: UTC, milliseconds, "Z"), so
    code ported from uni that passes a Date (createPushMessage's ``when``, a record's
    ``createdAt`` in a payload) sends what it did there. A naive datetime is local
    time, as a Date made from its parts. Anything else raises json's TypeError."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def reject_constant(name: str) -> NoReturn:
    """``parse_constant`` for json.loads: the ValueError names the value."""
    raise ValueError(f"{name} is not JSON")


def finite_float(text: str) -> float:
    """``parse_float`` for json.loads: ``1e400`` is a valid JSON number that float()
    makes Infinity of, which JSON cannot write back (every answer or event carrying
    it would fail to encode); the ValueError names it."""
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise ValueError(f"{shown} is too large for a number (at most about 1.8e308)")
    return value


def lone_surrogate(value: Any) -> int | None:
    """The first lone surrogate's code point in ``value``'s strings and keys (parsed
    JSON), or None. May raise RecursionError for a value nested too deep to encode."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return ord(text[exc.start])
    return None


def well_formed(value: Any) -> Any:
    """``value`` (parsed JSON) with every lone surrogate in its strings and keys
    replaced by U+FFFD, and split pairs joined; ``value`` itself when it has none.
    A JavaScript string can hold one (``title.slice(0, 40)`` through an emoji), and
    JSON carries it as an escape; SQLite and D-Bus cannot take it. May raise
    RecursionError for a value nested too deep to encode."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
    return value

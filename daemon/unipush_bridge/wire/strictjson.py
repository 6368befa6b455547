"""JSON as RFC 8259 has it: Python's json reads NaN, Infinity and -Infinity, which no
other end (a browser's JSON.parse, uniCloud's JSON.stringify) writes or reads. Taken
in, such a value is stored and later cannot be encoded for an app: refused at the edge
instead, where the sender hears why."""

from __future__ import annotations

from typing import Any


def reject_constant(name: str) -> Any:
    """``parse_constant`` for json.loads: the ValueError names the value."""
    raise ValueError(f"{name} is not JSON")

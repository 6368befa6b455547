"""JSON as RFC 8259 has it: Python's json reads NaN, Infinity and -Infinity, which no
other end (a browser's JSON.parse, uniCloud's JSON.stringify) writes or reads. Taken
in, such a value is stored and later cannot be encoded for an app: refused at the edge
instead, where the sender hears why."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the CLI's fast path imports this module and not typing
    from typing import NoReturn


def reject_constant(name: str) -> NoReturn:
    """``parse_constant`` for json.loads: the ValueError names the value."""
    raise ValueError(f"{name} is not JSON")

"""The doctor's findings and how they are shown: plain data in, text or JSON out, no
I/O. Each check says ok, or what failed and the one thing to do about it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import EXIT_FAIL, EXIT_OK
from ..logs import printable


class Outcome(Enum):
    OK = "ok"
    FAIL = "fail"
    #: Not run because an earlier check failed (the bus for the notification server).
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def ok(name: str, detail: str, **data: Any) -> Check:
    return Check(name, Outcome.OK, detail, None, data)


def fail(name: str, detail: str, fix: str, **data: Any) -> Check:
    return Check(name, Outcome.FAIL, detail, fix, data)


def skip(name: str, why: str) -> Check:
    return Check(name, Outcome.SKIP, why)


def exit_code(checks: Sequence[Check]) -> int:
    """0 only when every check passed: a skipped check passed nothing."""
    return EXIT_OK if all(c.outcome is Outcome.OK for c in checks) else EXIT_FAIL


def as_text(checks: Sequence[Check]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        lines.append(printable(f"{c.outcome.value:4}  {c.name:{width}}  {c.detail}"))
        if c.fix:
            lines.append(printable(f"{'':4}  {'':{width}}  fix: {c.fix}"))
    failed = sum(c.outcome is not Outcome.OK for c in checks)
    lines.append("all checks passed" if not failed else f"{failed} of {len(checks)} not ok")
    return "\n".join(lines)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps(
        {
            "ok": exit_code(checks) == EXIT_OK,
            "checks": [
                {
                    "name": c.name,
                    "outcome": c.outcome.value,
                    "detail": c.detail,
                    "fix": c.fix,
                    **({"data": c.data} if c.data else {}),
                }
                for c in checks
            ],
        },
        indent=2,
        default=str,
    )

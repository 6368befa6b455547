"""The pytest plugin's fixtures used as a project would use them (issue 16 item 2)."""

from __future__ import annotations

from typing import Any


def test_sample_three_lines(unipush: Any) -> None:
    """issue 16 item 2: the docs/testing.md sample, word for word."""
    unipush.push(title="Order shipped", payload={"order": 42})
    unipush.click(unipush.notification(title="Order shipped"))
    assert unipush.wait_for_event("click")["data"]["payload"] == {"order": 42}

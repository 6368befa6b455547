"""The doctor's report as plain data (issue 14 item 2): exit 0 only when every check is ok,
each failure followed by its fix, the JSON the same findings."""

from __future__ import annotations

import json

from unipush_bridge.service.report import as_json, as_text, exit_code, fail, ok, skip


def test_exit_zero_only_when_all_pass() -> None:
    """issue 14 item 2: a failure or a skipped check (it passed nothing) is exit 1."""
    assert exit_code([ok("a", "fine"), ok("b", "fine")]) == 0
    assert exit_code([ok("a", "fine"), fail("b", "broken", "mend it")]) == 1
    assert exit_code([ok("a", "fine"), skip("b", "needs a")]) == 1


def test_text_and_json() -> None:
    """issue 14 item 2: one line per check in order, the fix under a failure; terminal
    controls in a finding (a server name is someone else's text) are escaped."""
    checks = [
        ok("config", "defaults"),
        fail("session bus", "not set", "import it"),
        skip("notification server", "needs the session bus"),
        ok("x", "evil \x1b[31m name"),
    ]
    assert as_text(checks).splitlines() == [
        "ok    config               defaults",
        "fail  session bus          not set",
        "                           fix: import it",
        "skip  notification server  needs the session bus",
        "ok    x                    evil \\x1b[31m name",
        "2 of 4 not ok",
    ]
    data = json.loads(as_json(checks))
    assert data["ok"] is False
    assert [c["outcome"] for c in data["checks"]] == ["ok", "fail", "skip", "ok"]
    assert data["checks"][1]["fix"] == "import it"

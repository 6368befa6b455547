"""issue 10 item 3: text D-Bus cannot carry, and which failures mean the server is gone.

Uses the fake org.freedesktop.Notifications of test_notifier (desktop-notifier's own
D-Bus backend runs for real above it); the real-server side is tests/e2e/test_hostile_text.py.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from dbus_fast.errors import DBusError

from tests.unit.runtime.test_notifier import FakeServer, backend, server
from unipush_bridge.runtime.localpush import well_formed
from unipush_bridge.runtime.notifier import (
    DesktopNotifierBackend,
    NotificationRequest,
    NotifyError,
    dbus_text,
)

__all__ = ["backend", "server"]  # fixtures

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the D-Bus backend is Linux only"
)


class Refusing:
    """Makes the fake answer Notify with ``error`` for summaries starting ``refuse``."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.error: Exception = DBusError("org.freedesktop.DBus.Error.InvalidArgs", "bad hint")
        self._notify = server.call_notify
        server.call_notify = self.call_notify  # type: ignore[method-assign]

    async def call_notify(self, app_name: str, replaces_id: int, icon: str, summary: str,
                          *rest: Any) -> int:  # fmt: skip
        if summary.startswith("refuse"):
            raise self.error
        return await self._notify(app_name, replaces_id, icon, summary, *rest)


def test_dbus_text_replaces_what_dbus_cannot_carry() -> None:
    """issue 10 item 3: NUL, lone surrogates, C0 (not tab and newline), DEL, C1 and
    noncharacters become U+FFFD; everything else is left alone."""
    assert dbus_text("a\x00b\x1b[2J\x7f\x9b\ud800\udfff\ufffe\U0010ffff") == (
        "a\ufffdb\ufffd[2J" + "\ufffd" * 6
    )
    kept = "line one\n\ttab é 漢字 😀 \u202e"
    assert dbus_text(kept) == kept


async def test_nul_in_title_body_and_category_reaches_the_server_cleaned(
    server: FakeServer, backend: DesktopNotifierBackend
) -> None:
    """issue 10 item 3: each string of the Notify call is cleaned, not refused."""
    await backend.show(
        NotificationRequest(title="t\x00", body="b\x00\ud800", category="im\x00.received")
    )
    (call,) = server.calls
    assert (call.summary, call.body) == ("t\ufffd", "b\ufffd\ufffd")
    assert call.hint("category") == "im\ufffd.received"
    assert backend.available


@pytest.fixture
def refusing(server: FakeServer) -> Refusing:
    return Refusing(server)


async def test_one_refused_notification_leaves_the_server_available(
    refusing: Refusing, backend: DesktopNotifierBackend
) -> None:
    """issue 10 item 3: an error that is the notification's own (InvalidArgs, a
    marshalling error) fails that one show; the next is shown at once."""
    with pytest.raises(NotifyError, match="refused this notification: DBusError: bad hint"):
        await backend.show(NotificationRequest(title="refuse me", body="x"))
    assert backend.available
    await backend.show(NotificationRequest(title="next", body="y"))
    assert [c.summary for c in refusing.server.calls] == ["next"]


@pytest.mark.parametrize(
    "error",
    [
        DBusError("org.freedesktop.DBus.Error.ServiceUnknown", "no owner"),
        DBusError("org.freedesktop.DBus.Error.NameHasNoOwner", "no owner"),
        EOFError(),
        ConnectionResetError(),
    ],
)
async def test_an_error_that_means_the_server_is_gone_switches_notifications_off(
    refusing: Refusing, backend: DesktopNotifierBackend, error: Exception
) -> None:
    """issue 10 item 3: only no owner of the name or a lost connection does."""
    refusing.error = error
    # issue 11 item 6: an absent server is "no notification server", not "refused".
    with pytest.raises(NotifyError, match=r"^no notification server$"):
        await backend.show(NotificationRequest(title="refuse me", body="x"))
    assert not backend.available


def test_well_formed_replaces_lone_surrogates_and_joins_split_pairs() -> None:
    """issue 10 item 3: createPushMessage options SQLite and D-Bus can both store."""
    params = {"content": "a\ud800", "payload": {"k\udfff": ["\ud83d\ude00"]}, "delay": 1}
    assert well_formed(params) == {"content": "a\ufffd", "payload": {"k\ufffd": ["😀"]}, "delay": 1}
    plain = {"content": "fine"}
    assert well_formed(plain) is plain

"""issue 11: what the D-Bus backend does per server and when the server changes.

Uses the fake org.freedesktop.Notifications of test_notifier (desktop-notifier's own
signal handling runs for real above it); the real servers are in
tests/e2e/test_server_matrix.py.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from tests.unit.runtime.test_notifier import FakeServer, backend, by_summary, req, server, until
from unipush_bridge.runtime.dbus_backend import ServerInfo
from unipush_bridge.runtime.notifier import DesktopNotifierBackend, NotifyError

__all__ = ["backend", "server"]  # fixtures

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the D-Bus backend is Linux only"
)


def _linux(b: DesktopNotifierBackend) -> Any:
    assert b._linux is not None
    return b._linux


@pytest.mark.parametrize(
    ("name", "caps", "actions", "click"),
    [
        ("dunst", ["actions", "body"], ["default", ""], "body"),
        ("Xfce Notify Daemon", ["actions", "body"], ["default", "Open"], "button"),
        ("notify-osd", ["body", "body-markup"], [], "none"),
    ],
)
def test_actions_follow_the_server(
    name: str, caps: list[str], actions: list[str], click: str
) -> None:
    """issue 11 items 3, 4: a labelled default on xfce, none without ``actions``."""
    info = ServerInfo(name, "v", "1", frozenset(caps))
    assert info.default_action() == actions
    assert info.click == click


async def test_an_answer_from_a_gone_server_is_not_kept(
    server: FakeServer, backend: DesktopNotifierBackend
) -> None:
    """issue 11 items 1, 2: the server changes while a Notify is out: its id names
    another notification now, so it is neither clicked nor covered."""
    clicked: list[str] = []
    gate = server.hold("late")
    task = asyncio.create_task(backend.show(req("late", on_clicked=lambda: clicked.append("x"))))
    await until(lambda: len(server.calls) == 1)
    _linux(backend)._owner_changed(":1.5", ":1.9")
    gate.set()
    await task
    server.click(1)
    assert clicked == []
    await backend.show(req("cover", cover=True))
    assert by_summary(server, "cover").replaces_id == 0


async def test_owner_change_drops_cover_id_clicks_and_server_info(
    server: FakeServer, backend: DesktopNotifierBackend
) -> None:
    """issue 11 items 1, 2, 5: every id held is void, the server is read again."""
    clicked: list[str] = []
    await backend.show(req("ours", on_clicked=lambda: clicked.append("ours")))
    linux = _linux(backend)
    linux._owner_changed(":1.5", "")
    assert not backend.available
    assert linux.server is None and not linux._platform_to_interface_notification_identifier
    with pytest.raises(NotifyError, match=r"^no notification server$"):
        await backend.show(req("while gone"))
    server.caps = ["body"]  # the new owner has no actions
    linux._owner_changed("", ":1.9")
    await until(lambda: backend.available)
    server.click(1)  # another app's notification, with our old id
    assert clicked == []
    await backend.show(req("after", cover=True, on_clicked=lambda: None))
    after = by_summary(server, "after")
    assert (after.replaces_id, after.actions) == (0, [])
    assert backend.describe()["click"] == "none"

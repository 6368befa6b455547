"""The one AddMatch call that every signal watcher on a dbus-fast connection makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbus_fast import Message


def add_match(rule: str) -> Message:
    """The bus forwards a signal to a connection only once it has asked with a rule.
    dbus-fast loads here, not at import: it exists on Linux only."""
    from dbus_fast import Message

    return Message(
        destination="org.freedesktop.DBus",
        path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus",
        member="AddMatch",
        signature="s",
        body=[rule],
    )

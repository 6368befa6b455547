"""The e2e notification stack lives in the package (unipush_bridge.testing.notifstack),
so the pytest plugin's dunst fixtures and our e2e suite run one copy (issue 16 item 3)."""

from unipush_bridge.testing.bus import bus_conf as _bus_conf
from unipush_bridge.testing.notifstack import (
    SERVERS,
    DunstStack,
    NotifStack,
    Popup,
    ServerSpec,
    StackError,
    StackTimeout,
    require_tools,
)

__all__ = [
    "SERVERS",
    "DunstStack",
    "NotifStack",
    "Popup",
    "ServerSpec",
    "StackError",
    "StackTimeout",
    "_bus_conf",
    "require_tools",
]

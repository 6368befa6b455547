"""PushClient's quiet hours calls against the real local API server and driver
(issue 14 item 4)."""

from __future__ import annotations

import pytest

from unipush_bridge.clients import PushClient, UniApiError
from unipush_bridge.runtime.core import parse_quiet_hours
from unipush_bridge.runtime.localapi import LocalApiServer
from unipush_bridge.runtime.store import Store

from .test_driver import Screen
from .test_quiet_driver import H, make, running_local, sock_path, store

__all__ = ["sock_path", "store"]  # fixtures


async def test_the_client_sets_and_gets_quiet_hours(store: Store, sock_path: object) -> None:
    """issue 14 item 4: set_quiet_hours / get_quiet_hours."""
    d = make(store, Screen(), running_local(12 * H), quiet_hours=parse_quiet_hours("13:00-14:00"))
    await d.start()
    srv = LocalApiServer(d, sock_path, dict)  # type: ignore[arg-type]
    await srv.start()
    try:
        async with PushClient(sock_path) as push:  # type: ignore[arg-type]
            assert (await push.get_quiet_hours())["schedule"] == "13:00-14:00"
            state = await push.set_quiet_hours(True)
            assert (state["active"], state["mode"]) == (True, "on")
            assert (await push.set_quiet_hours(None))["mode"] == "auto"
            with pytest.raises(UniApiError, match="on must be true, false or null"):
                await push.set_quiet_hours("yes")  # type: ignore[arg-type]
    finally:
        await srv.stop()
        await d.stop(0.5)

"""The pytest plugin (entry point ``pytest11: unipush_bridge``): fixtures that start a
private bus, a notification server, a gateway and a daemon for a test, and a facade
that reads like the test's story::

    def test_click_reaches_the_app(unipush):
        unipush.push(title="Order shipped", payload={"order": 42})
        unipush.click(unipush.notification(title="Order shipped"))
        assert unipush.wait_for_event("click")["data"]["payload"] == {"order": 42}

pytest loads this module in every run of a project that installed us, so it imports
only pytest and the standard library; each fixture imports what it starts. Fixture names
all begin with ``unipush`` so they cannot clash with a project's own.

``--unipush-server=capture`` (the default) serves notifications with our capture server
(no X server); ``--unipush-server=dunst`` with real dunst under Xvfb.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .notifstack import DunstStack
    from .servers import NotificationServer, Shown
    from .stack import DaemonProcess, GatewayProcess, InProcessListener

SERVERS = ("capture", "dunst")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unipush", "unipush-bridge fixtures")
    group.addoption(
        "--unipush-server",
        choices=SERVERS,
        default=os.environ.get("UNIPUSH_TEST_SERVER", "capture"),
        help="notification server behind the unipush fixtures: capture (default, no X) "
        "or dunst (real dunst under Xvfb)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unipush_server(kind): the notification server for this test's unipush fixtures "
        "(capture or dunst), whatever --unipush-server says",
    )


def _private_dir(prefix: str) -> Path:
    """A 0700 dir short enough for unix socket paths (~108 bytes)."""
    base = tempfile.gettempdir()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base if len(base) < 40 else "/tmp"))


@pytest.fixture(scope="session")
def unipush_dunst_session() -> Iterator[DunstStack]:
    """One bus + Xvfb + dunst for the session (~0.4 s); each test gets it reset."""
    from .notifstack import DunstStack, require_tools

    require_tools()
    with DunstStack() as stack:
        yield stack


@pytest.fixture
def unipush_server(request: pytest.FixtureRequest) -> Iterator[NotificationServer]:
    """A private session bus with a notification server on it: the capture server (a
    bus of its own per test) or dunst (the session's, reset)."""
    from .servers import start_server

    marker = request.node.get_closest_marker("unipush_server")
    kind = marker.args[0] if marker else request.config.getoption("--unipush-server")
    if kind not in SERVERS:
        raise pytest.UsageError(f"unipush_server: must be one of {SERVERS}, not {kind!r}")
    if kind == "capture":
        from .bus import require_dbus_daemon

        require_dbus_daemon()
    stack = request.getfixturevalue("unipush_dunst_session") if kind == "dunst" else None
    server = start_server(kind, stack)
    request.addfinalizer(server.stop)  # also when the setup of a later fixture fails
    yield server


@pytest.fixture
def unipush_stack(
    unipush_server: NotificationServer, request: pytest.FixtureRequest
) -> Iterator[tuple[GatewayProcess, DaemonProcess]]:
    """A gateway and a daemon (registered: it has a cid), started side by side."""
    from .stack import DaemonProcess, GatewayProcess, child_env

    root = _private_dir("unipush-t-")
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    env = child_env(unipush_server.address, unipush_server.env)
    gateway = GatewayProcess(root / "gw", env)
    request.addfinalizer(gateway.stop)
    daemon = DaemonProcess(root / "d", gateway.ws_url, env)
    request.addfinalizer(daemon.stop)
    with ThreadPoolExecutor(2) as pool:
        waits: list[Future[Any]] = [pool.submit(gateway.wait_ready), pool.submit(daemon.wait_ready)]
        for done in waits:
            done.result()
    yield gateway, daemon


@pytest.fixture
def unipush_gateway(unipush_stack: tuple[GatewayProcess, DaemonProcess]) -> GatewayProcess:
    """The reference gateway (``.http_url``, ``.call(method, body)``)."""
    return unipush_stack[0]


@pytest.fixture
def unipush_daemon(unipush_stack: tuple[GatewayProcess, DaemonProcess]) -> DaemonProcess:
    """The daemon (``.cid``, ``.socket``, ``.status()``), registered with the gateway."""
    return unipush_stack[1]


@pytest.fixture
def unipush_listener(
    unipush_daemon: DaemonProcess, request: pytest.FixtureRequest
) -> InProcessListener:
    """An app listening (onPushMessage) from the start: pushes arrive as ``receive``."""
    from .stack import InProcessListener

    listener = InProcessListener(unipush_daemon.socket)
    request.addfinalizer(listener.close)
    return listener


class Unipush:
    """The facade: push, see what was shown, click, wait for the app's events."""

    def __init__(
        self, server: NotificationServer, gateway: GatewayProcess, daemon: DaemonProcess
    ) -> None:
        self.server = server
        self.gateway = gateway
        self.daemon = daemon
        self._listener: InProcessListener | None = None

    @property
    def cid(self) -> str:
        return self.daemon.cid

    def push(self, **message: Any) -> dict[str, Any]:
        """sendMessage to this daemon's cid (``title``, ``content``, ``payload``...)."""
        body: dict[str, Any] = {"push_clientid": self.daemon.cid, **message}
        body.setdefault("content", body.get("title") or "(no content)")
        status, answer = self.gateway.call("sendMessage", body, self.daemon.appid)
        assert status == 200 and answer.get("errCode") == 0, answer
        data: dict[str, Any] = answer["data"]
        return data

    def notify(self, **params: Any) -> dict[str, Any]:
        """createPushMessage through the daemon's local API (``content``, ``title``...)."""
        return self.daemon.call("createPushMessage", params)

    def notifications(self) -> list[Shown]:
        """What the server shows now, oldest first."""
        return self.server.notifications()

    def notification(self, title: str | None = None, timeout: float = 10.0) -> Shown:
        """Wait for exactly one shown notification (with this title) and return it."""
        return self.server.wait_one(title, timeout)

    def click(self, notification: Shown, action: str = "default") -> None:
        """Click it as a user would: ActionInvoked, then closed (reason 2)."""
        self.server.click(notification, action)

    def dismiss(self, notification: Shown) -> None:
        self.server.dismiss(notification)

    def listen(self) -> InProcessListener:
        """Connect the app's listener now (it also connects on the first wait_for_event)."""
        if self._listener is None:
            from .stack import InProcessListener

            self._listener = InProcessListener(self.daemon.socket)
        return self._listener

    def wait_for_event(self, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The app's next ``receive``/``click`` event (held clicks are delivered on connect)."""
        return self.listen().wait_for_event(kind, timeout)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None


@pytest.fixture
def unipush(
    unipush_server: NotificationServer,
    unipush_stack: tuple[GatewayProcess, DaemonProcess],
    request: pytest.FixtureRequest,
) -> Unipush:
    """Everything at once; no listener until the test waits for an event (or listens)."""
    facade = Unipush(unipush_server, *unipush_stack)
    request.addfinalizer(facade.close)
    return facade

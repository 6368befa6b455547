"""notifier.py and dbus_backend.py against a fake org.freedesktop.Notifications.

The fake stands in for dbus-fast's proxy interface, so desktop-notifier's own D-Bus
backend code runs for real; only the bus connection (``_init_dbus``) is replaced. Notify
answers can be held on an :class:`asyncio.Event` so that two calls overlap.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dbus_fast.signature import Variant
from desktop_notifier import Notification
from desktop_notifier.backends.dbus import DBusDesktopNotifier

from unipush_bridge import errors
from unipush_bridge.runtime import notifier as notifier_mod
from unipush_bridge.runtime.dbus_backend import MAX_TRACKED
from unipush_bridge.runtime.notifier import (
    MAX_BODY,
    MAX_TITLE,
    DesktopNotifierBackend,
    NotificationRequest,
    NotifyError,
    clip,
    render_text,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the D-Bus backend is Linux only"
)

DUNST_CAPS = ["actions", "body", "body-hyperlinks", "body-markup", "x-dunst-stack-tag"]


@dataclass
class Arg:
    signature: str


@dataclass
class Method:
    name: str
    in_args: list[Arg]


@dataclass
class Introspection:
    methods: list[Method]


@dataclass
class NotifyArgs:
    app_name: str
    replaces_id: int
    icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    timeout: int

    def hint(self, key: str) -> Any:
        value = self.hints.get(key)
        return value.value if isinstance(value, Variant) else value


@dataclass
class FakeServer:
    """The proxy interface desktop-notifier talks to, with a server's id rules (FDO spec)."""

    caps: list[str] = field(default_factory=lambda: list(DUNST_CAPS))
    hints_signature: str = "a{sv}"
    calls: list[NotifyArgs] = field(default_factory=list)
    #: Summary -> event a Notify with that summary waits for before it answers.
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    shown: set[int] = field(default_factory=set)
    next_id: int = 1
    closed_handlers: list[Callable[[int, int], None]] = field(default_factory=list)
    action_handlers: list[Callable[[int, str], None]] = field(default_factory=list)

    @property
    def introspection(self) -> Introspection:
        sigs = ["s", "u", "s", "s", "s", "as", self.hints_signature, "i"]
        return Introspection([Method("Notify", [Arg(s) for s in sigs])])

    async def call_notify(
        self,
        app_name: str,
        replaces_id: int,
        icon: str,
        summary: str,
        body: str,
        actions: list[str],
        hints: dict[str, Any],
        timeout: int,
    ) -> int:
        self.calls.append(
            NotifyArgs(app_name, replaces_id, icon, summary, body, actions, dict(hints), timeout)
        )
        # The id is settled on receipt, as a server does; the answer may be held back.
        if replaces_id in self.shown:
            nid = replaces_id
        else:
            nid, self.next_id = self.next_id, self.next_id + 1
        self.shown.add(nid)
        gate = self.gates.get(summary)
        if gate is not None:
            await gate.wait()
        return nid

    async def call_get_capabilities(self) -> list[str]:
        return list(self.caps)

    async def call_get_server_information(self) -> tuple[str, str, str, str]:
        return ("fake", "tests", "1", "1.2")

    async def call_close_notification(self, nid: int) -> None:
        self.close(nid, 3)

    def on_notification_closed(self, handler: Callable[[int, int], None]) -> None:
        self.closed_handlers.append(handler)

    def on_action_invoked(self, handler: Callable[[int, str], None]) -> None:
        self.action_handlers.append(handler)

    def close(self, nid: int, reason: int) -> None:
        """The server closes ``nid`` and says so (reason 2: dismissed by the user)."""
        self.shown.discard(nid)
        for handler in self.closed_handlers:
            handler(nid, reason)

    def click(self, nid: int) -> None:
        for handler in self.action_handlers:
            handler(nid, "default")

    def hold(self, summary: str) -> asyncio.Event:
        gate = self.gates[summary] = asyncio.Event()
        return gate


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    fake = FakeServer()

    async def init_dbus(self: DBusDesktopNotifier) -> Any:
        # What the real _init_dbus does once it has the proxy interface.
        self.interface = fake  # type: ignore[assignment]
        fake.on_notification_closed(self._on_closed)
        fake.on_action_invoked(self._on_action)
        return fake

    monkeypatch.setattr(DBusDesktopNotifier, "_init_dbus", init_dbus)
    yield fake
    for gate in fake.gates.values():
        gate.set()


@pytest.fixture
async def backend(server: FakeServer) -> DesktopNotifierBackend:
    b = DesktopNotifierBackend("unit-app", timeout=2.0)
    await b.start()
    assert b.available
    return b


def req(title: str, *, cover: bool = False, **kw: Any) -> NotificationRequest:
    return NotificationRequest(title=title, body=f"body of {title}", cover=cover, **kw)


async def until(cond: Callable[[], bool]) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def by_summary(server: FakeServer, summary: str) -> NotifyArgs:
    (call,) = [c for c in server.calls if c.summary == summary]
    return call


# --- defect 1: per-call state travels with the call -------------------------------------


async def test_overlapping_shows_each_send_their_own_category(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    gate = server.hold("one")
    server.gates["two"] = gate
    one = asyncio.create_task(backend.show(req("one", category="im.received")))
    two = asyncio.create_task(backend.show(req("two", category="email.arrived")))
    await until(lambda: len(server.calls) == 2)  # both Notify calls are in flight
    gate.set()
    await asyncio.gather(one, two)
    assert by_summary(server, "one").hint("category") == "im.received"
    assert by_summary(server, "two").hint("category") == "email.arrived"
    assert [c.replaces_id for c in server.calls] == [0, 0]


async def test_overlapping_plain_and_cover_keep_their_own_replaces_id(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("first"))  # nid 1
    gate = server.hold("cover")
    server.gates["plain"] = gate
    cover = asyncio.create_task(backend.show(req("cover", cover=True, category="c")))
    plain = asyncio.create_task(backend.show(req("plain")))
    await until(lambda: len(server.calls) == 3)
    gate.set()
    await asyncio.gather(cover, plain)
    assert by_summary(server, "cover").replaces_id == 1
    assert by_summary(server, "cover").hint("category") == "c"
    assert by_summary(server, "plain").replaces_id == 0
    assert "category" not in by_summary(server, "plain").hints


async def test_concurrent_show_and_cover_record_their_own_ids(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """Each call records its own id, and the previous notification is the one asked
    for last: an answer that comes late (a's) does not make an older one the last."""
    await backend.show(req("p0"))  # nid 1
    hold_a, hold_b = server.hold("a"), server.hold("b")
    a = asyncio.create_task(backend.show(req("a", cover=True)))  # replaces 1 -> nid 1
    b = asyncio.create_task(backend.show(req("b")))  # nid 2
    await until(lambda: len(server.calls) == 3)
    hold_b.set()
    await b
    # b (2) was asked for after a, and is answered: it is the one a cover replaces.
    await backend.show(req("c", cover=True))
    assert by_summary(server, "c").replaces_id == 2
    hold_a.set()
    await a
    # a answered last, with its own id (1), but c was asked for after it.
    await backend.show(req("d", cover=True))
    assert by_summary(server, "a").replaces_id == 1
    assert by_summary(server, "d").replaces_id == 2
    assert server.shown == {1, 2}


async def test_backend_writes_each_calls_own_platform_id(server: FakeServer) -> None:
    from unipush_bridge.runtime.dbus_backend import BridgeDBusBackend, NotifyCall, notify_call

    backend = BridgeDBusBackend("unit-app")
    await backend.get_capabilities()
    first, second = NotifyCall(category="x"), NotifyCall(category="y")
    gate = server.hold("n1")
    server.gates["n2"] = gate

    async def send(call: NotifyCall, title: str) -> None:
        with notify_call(call):
            await backend.send(Notification(title=title, message=""))

    tasks = [
        asyncio.create_task(send(first, "n1")),
        asyncio.create_task(send(second, "n2")),
    ]
    await until(lambda: len(server.calls) == 2)
    gate.set()
    await asyncio.gather(*tasks)
    assert (first.platform_id, second.platform_id) == (1, 2)
    assert [c.hint("category") for c in server.calls] == ["x", "y"]
    assert not hasattr(backend, "pending")
    assert not hasattr(backend, "last_platform_id")


# --- defect 2: cover replaces the previous notification, whatever it was -----------------


async def test_cover_after_plain_replaces_the_plain_one(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("first"))
    await backend.show(req("second", cover=True))
    assert by_summary(server, "first").replaces_id == 0
    assert by_summary(server, "second").replaces_id == 1
    assert server.shown == {1}


async def test_cover_after_cover_replaces_the_last_one(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("p1"))  # 1
    await backend.show(req("p2"))  # 2
    await backend.show(req("c1", cover=True))  # replaces 2
    await backend.show(req("c2", cover=True))  # replaces 2 again
    await backend.show(req("p3"))  # 3
    await backend.show(req("c3", cover=True))  # replaces 3
    assert [c.replaces_id for c in server.calls] == [0, 0, 2, 2, 0, 3]
    assert server.shown == {1, 2, 3}


async def test_first_cover_is_a_new_notification(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("c", cover=True))
    assert server.calls[0].replaces_id == 0
    assert server.shown == {1}


async def test_plain_never_sends_a_replaces_id(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    covers = [False, True, False, True, True, False, False]
    for i, cover in enumerate(covers):
        await backend.show(req(f"n{i}", cover=cover))
    assert [c.replaces_id for c, cover in zip(server.calls, covers, strict=True) if not cover] == [
        0
    ] * covers.count(False)


async def test_replaced_notifications_callbacks_go_with_it(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    clicked: list[str] = []
    await backend.show(req("old", on_clicked=lambda: clicked.append("old")))
    await backend.show(req("new", cover=True, on_clicked=lambda: clicked.append("new")))
    linux = backend._linux
    assert linux is not None
    assert dict(linux._platform_to_interface_notification_identifier).keys() == {1}
    assert len(linux._notification_cache) == 1
    server.click(1)
    assert clicked == ["new"]


async def test_two_covers_at_once_replace_in_turn(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """uni's cover replaces the notification before it: a second cover asked for while
    the first is on its way waits for the first's id, so one notification is left."""
    await backend.show(req("old"))
    gate = server.hold("c1")
    tasks = [asyncio.create_task(backend.show(req(t, cover=True))) for t in ("c1", "c2")]
    await until(lambda: len(server.calls) == 2)
    await asyncio.sleep(0.01)
    assert len(server.calls) == 2  # c2 waits for c1's answer
    gate.set()
    await asyncio.gather(*tasks)
    assert [c.replaces_id for c in server.calls] == [0, 1, 1]
    assert server.shown == {1}
    linux = backend._linux
    assert linux is not None
    (identifier,) = linux._platform_to_interface_notification_identifier.values()
    assert list(linux._notification_cache) == [identifier]


async def test_two_covers_at_once_with_nothing_before_leave_one_notification(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """The race the first calls of an app hit: two covers and no notification yet
    made two (both replaced 0)."""
    gate = server.hold("c1")
    tasks = [asyncio.create_task(backend.show(req(t, cover=True))) for t in ("c1", "c2")]
    await until(lambda: len(server.calls) == 1)
    gate.set()
    await asyncio.gather(*tasks)
    assert [c.replaces_id for c in server.calls] == [0, 1]
    assert server.shown == {1}


async def test_cover_after_the_previous_was_dismissed_shows_a_new_one(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("old"))
    server.close(1, 2)
    await backend.show(req("new", cover=True))
    # issue 11 item 1: a closed id is void (a server may give it out again): a new one.
    assert by_summary(server, "new").replaces_id == 0
    assert server.shown == {2}
    await backend.show(req("newer", cover=True))
    assert by_summary(server, "newer").replaces_id == 2


async def test_failed_show_is_not_the_previous_one(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("shown"))
    backend.timeout = 0.05
    server.hold("stuck")
    with pytest.raises(NotifyError, match="did not answer"):
        await backend.show(req("stuck"))
    assert not backend.available
    backend.timeout, backend._reprobe_after = 2.0, 0.0
    await backend.show(req("cover", cover=True))
    # The answer that never came is not known; the last one shown is.
    assert by_summary(server, "cover").replaces_id == 1


async def test_a_show_that_timed_out_and_is_answered_later_says_so(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """A hung server that runs again answers the queued Notify: the call was not
    cancelled, ``late`` gives its identifier, and the server counts as back at once."""
    backend.timeout = 0.05
    gate = server.hold("stuck")
    with pytest.raises(errors.NotifyTimedOut, match="did not answer") as raised:
        await backend.show(req("stuck"))
    assert not backend.available
    gate.set()
    identifier = await asyncio.wait_for(raised.value.late, 2.0)
    assert identifier is not None and server.shown == {1}
    await until(lambda: backend.available)


async def test_signals_kept_while_a_timed_out_show_waits_are_bounded(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """A timed-out Notify stays in flight (its answer may still come), so the signals
    kept for answers not yet given (other apps' closes, on a server that broadcasts
    them) must not grow without end while it waits."""
    backend.timeout = 0.05
    server.hold("stuck")
    with pytest.raises(errors.NotifyTimedOut):
        await backend.show(req("stuck"))
    for nid in range(1000, 1000 + 3 * MAX_TRACKED):
        server.close(nid, 1)
    linux = backend._linux
    assert linux is not None and len(linux._early) <= MAX_TRACKED


# --- hints --------------------------------------------------------------------------------
# --- hints --------------------------------------------------------------------------------


async def test_category_is_a_plain_string_for_old_a_ss_servers(server: FakeServer) -> None:
    server.hints_signature = "a{ss}"
    backend = DesktopNotifierBackend("unit-app")
    await backend.start()
    await backend.show(req("t", category="im"))
    assert server.calls[0].hints["category"] == "im"
    assert all(isinstance(v, str) for v in server.calls[0].hints.values())


async def test_no_category_sends_no_hint(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(req("t"))
    assert "category" not in server.calls[0].hints
    assert isinstance(server.calls[0].hints["urgency"], Variant)


# --- text ---------------------------------------------------------------------------------


async def test_body_is_escaped_for_a_markup_server(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    await backend.show(NotificationRequest(title="<t>", body="a < b & <b>c</b>"))
    assert server.calls[0].summary == "<t>"
    assert server.calls[0].body == "a &lt; b &amp; &lt;b&gt;c&lt;/b&gt;"


async def test_body_is_raw_for_a_server_without_markup(server: FakeServer) -> None:
    server.caps = ["actions", "body"]
    backend = DesktopNotifierBackend("unit-app")
    await backend.start()
    await backend.show(NotificationRequest(title="t", body="a < b"))
    assert server.calls[0].body == "a < b"


def test_render_text_escapes_only_the_body_and_only_for_markup() -> None:
    assert render_text("<a>", "<b> & 'q\"", True) == ("<a>", "&lt;b&gt; &amp; 'q\"")
    assert render_text("<a>", "<b> &", False) == ("<a>", "<b> &")


def test_render_text_cuts_before_escaping() -> None:
    title, body = render_text("t" * (MAX_TITLE + 5), "&" * (MAX_BODY + 5), True)
    assert title == "t" * (MAX_TITLE - 1) + "…"
    # The cut comes first, so no entity is split.
    assert body == "&amp;" * (MAX_BODY - 1) + "…"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("", 3, ""), ("abc", 3, "abc"), ("abcd", 3, "ab…"), ("abcd", 1, "…")],
)
def test_clip(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


def test_notify_error_is_the_package_one() -> None:
    assert NotifyError is errors.NotifyError
    assert notifier_mod.NotifyError is errors.NotifyError


# --- macOS and Windows: cover reuses the previous notification's identifier ---------------


@dataclass
class FakeDesktopNotifier:
    """``DesktopNotifier`` on a platform that replaces by identifier."""

    app_name: str = "unit-app"
    sent: list[Notification] = field(default_factory=list)

    async def get_capabilities(self) -> frozenset[object]:
        return frozenset()

    async def send_notification(self, notification: Notification) -> str:
        self.sent.append(notification)
        if notification.on_dispatched:
            notification.on_dispatched()
        return notification.identifier


async def test_cover_reuses_the_previous_identifier_off_linux() -> None:
    backend = DesktopNotifierBackend("unit-app")
    fake = FakeDesktopNotifier()
    backend._dn = fake  # type: ignore[assignment]
    backend._linux = None
    backend._markup = False
    await backend.start()
    first = await backend.show(req("first"))
    covered = await backend.show(req("cover", cover=True))
    plain = await backend.show(req("plain"))
    again = await backend.show(req("again", cover=True))
    assert covered == first
    assert plain != first
    assert again == plain
    assert [n.identifier for n in fake.sent] == [first, first, plain, plain]


async def test_a_click_that_comes_before_the_notify_answer_is_not_lost(
    backend: DesktopNotifierBackend, server: FakeServer
) -> None:
    """A server's signal can reach us before its answer to Notify: both in one read of
    the bus socket, the signal's handler runs at once and the awaiting send only a turn
    later. A click the moment a notification appears (a test's click, a server that
    acts on its own) found no id mapped yet and was dropped; so was a close."""
    clicked: list[str] = []
    answer = server.hold("fast")
    showing = asyncio.create_task(
        backend.show(req("fast", on_clicked=lambda: clicked.append("fast")))
    )
    await until(lambda: bool(server.calls))
    server.click(1)  # before the answer that tells us the id is 1
    answer.set()
    await showing
    await until(lambda: clicked == ["fast"])
    # A signal for an id none of our calls is given stays unclaimed, and is dropped
    # once no call is in flight.
    server.click(99)
    assert clicked == ["fast"]

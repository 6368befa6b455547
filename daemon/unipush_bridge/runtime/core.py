"""What uni-push means on the daemon side, as plain code: fed facts, returns actions.

The core decides where a push goes (receive, notification, hold), keeps the inbox
states and their transitions, the held messages and the pending click, sums up a
flood, decides what a click does, when a receipt is due, which channel gives which
urgency and sound, and when a scheduled notification fires. It imports no asyncio,
clock, SQLite or D-Bus: the driver (:mod:`.driver`) gives it the time and the
results of what it asked for, and carries out the actions it returns. So every rule
here, and every crash point of the crash-safety table, is a table test in process.

Listeners are opaque keys to the core; the driver maps them to connections.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import NO_SERVER, ApiFail
from ..wire.gateway import MAX_FRAME_BYTES, PushMessage
from . import localpush
from .localpush import Channel

UNIPUSH_VERSION = "2.0"
#: A flood summary waits this long for the flood to settle before it is shown.
SUMMARY_DEBOUNCE_S = 1.0
#: Shown notifications whose click we still act on (older ones are forgotten).
MAX_TICKETS = 1000
#: Channels an app may create (besides the default one).
MAX_CHANNELS = 100
#: A delayed notification that could not be shown when due (no notification server)
#: is tried again this often (the notifier probes the server again after 30 s)...
UNSHOWN_RETRY_S = 30.0
#: ...until this long after it was due; a notification later than that is old news.
UNSHOWN_GRACE_S = 600.0
#: Why a notification held back by quiet hours is in the history unshown.
QUIET_REASON = "quiet hours"
#: A channel of this importance breaks through quiet hours when the user allows it.
BREAKTHROUGH_IMPORTANCE = 4
DAY_S = 86_400.0
#: Kept in a retried notification's stored options: when it was first due and its
#: history entry (a caller's own option of that name is dropped).
RETRY_KEY = "_unshown"

#: A new listener gets held pushes in rounds of about this many bytes of events (and
#: at most HANDOVER_EVENTS of them), the next once it holds the last: a connection is
#: cut past 4 MiB of unread output, so handing over a long absence's pushes at once cut
#: the very listener that came for them (and they were held again, round after round).
HANDOVER_BYTES = 1024 * 1024
HANDOVER_EVENTS = 500
#: What a held push is counted as in memory beyond its event's size (its entry, the
#: parsed message): the bound on held pushes (``Config.max_held_bytes``) is on memory.
ENTRY_OVERHEAD = 1024
#: The held pushes' bound by default: past it the link stops taking pushes (64 MiB).
MAX_HELD_BYTES = 64 * 1024 * 1024

Listener = Hashable
ReceiptEvent = Literal["display", "click"]


# -- inbox states ------------------------------------------------------------------------


class State(enum.Enum):
    """Where a recorded push stands. Only PENDING, HELD and DONE are written to disk;
    the others are in flight and read back as the durable state they came from."""

    PENDING = "pending"  # recorded, not handed on yet
    RECEIVING = "receiving"  # receive events out, waiting for a listener to hold them
    SHOWING = "showing"  # a notification asked for, waiting for the server's answer
    HELD = "held"  # waits for the next listener
    DONE = "done"  # reached a listener or the screen


class Step(enum.Enum):
    TO_LISTENERS = "to listeners"
    TO_SCREEN = "to screen"
    NOBODY = "nobody to take it"
    SHOWN = "shown"
    NOT_SHOWN = "not shown"
    HELD_BY_LISTENER = "a listener holds it"
    NO_LISTENER_HELD = "no listener holds it"
    MISSED = "online only, and no app listens"
    EXPIRED = "its ttl ended before an app listened"
    SERVER_BACK = "the notification server is back"
    SHOWN_LATE = "a server that did not answer in time showed it after all"
    QUEUED = "held ones are being handed over: it waits behind them"


#: Every allowed transition; anything else is a bug and raises.
TRANSITIONS: dict[tuple[State, Step], State] = {
    (State.PENDING, Step.TO_LISTENERS): State.RECEIVING,
    (State.PENDING, Step.TO_SCREEN): State.SHOWING,
    (State.PENDING, Step.NOBODY): State.HELD,
    (State.PENDING, Step.MISSED): State.DONE,
    (State.PENDING, Step.QUEUED): State.HELD,
    (State.SHOWING, Step.SHOWN): State.DONE,
    (State.SHOWING, Step.TO_LISTENERS): State.RECEIVING,
    (State.SHOWING, Step.NOBODY): State.HELD,
    (State.RECEIVING, Step.HELD_BY_LISTENER): State.DONE,
    (State.RECEIVING, Step.NO_LISTENER_HELD): State.HELD,
    (State.HELD, Step.TO_LISTENERS): State.RECEIVING,
    (State.HELD, Step.EXPIRED): State.DONE,
    (State.HELD, Step.SERVER_BACK): State.PENDING,
    (State.HELD, Step.SHOWN_LATE): State.DONE,
}

#: What the store holds for an entry in each state (in-flight states keep the last one).
DURABLE = {State.PENDING, State.HELD, State.DONE}


def step(state: State, event: Step) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise AssertionError(f"no transition from {state.value} on {event.value!r}") from None


class HeldLedger:
    """How many entries are held and what they take, kept as each one moves, so the
    bound on held pushes costs nothing per push however many are held."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0  # their events' encoded sizes

    def moved(self, entry: Entry, old: State | None, new: State) -> None:
        if (old is State.HELD) == (new is State.HELD):
            return
        sign = 1 if new is State.HELD else -1
        self.count += sign
        self.bytes += sign * entry.size

    def memory(self) -> int:
        """About what the held entries take in memory."""
        return self.bytes + self.count * ENTRY_OVERHEAD


def event_size(message: PushMessage, msg_id: str = "") -> int:
    """About the bytes of the receive event this push is written to a listener as."""
    try:
        text = json.dumps(
            receive_event(event_data(message, msg_id, "")),
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
    except (ValueError, TypeError, RecursionError):  # not encodable: skipped when sent
        return MAX_FRAME_BYTES
    return len(text.encode("utf-8", "backslashreplace")) + 64  # the line around it


class Entry:
    """A recorded push the core still has. A plain class: the dispatch path makes one
    per push, and a dataclass's ``__setattr__`` hook ran on every field it set."""

    __slots__ = ("_size", "_state", "ledger", "message", "msg_id", "stored", "waits")

    def __init__(
        self,
        msg_id: str,
        message: PushMessage,
        state: State,
        stored: State,
        waits: bool = False,
        ledger: HeldLedger | None = None,
    ) -> None:
        self.msg_id = msg_id
        self.message = message
        self._state = state
        #: The state on disk (the last durable state this entry was persisted in).
        self.stored = stored
        #: On disk as held for want of a notification server (so a restart shows it).
        self.waits = waits
        #: Told of every change of ``state`` (the core's count of held pushes).
        self.ledger = ledger
        self._size: int | None = None
        if ledger is not None and state is State.HELD:
            ledger.moved(self, None, state)

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, new: State) -> None:
        old = self._state
        if (old is State.HELD) is not (new is State.HELD) and self.ledger is not None:
            self.ledger.moved(self, old, new)
        self._state = new

    @property
    def size(self) -> int:
        """Its receive event's encoded size, about (worked out once, when first needed)."""
        if self._size is None:
            self._size = event_size(self.message, self.msg_id)
        return self._size

    def __repr__(self) -> str:
        return f"Entry({self.msg_id!r}, {self._state.value}, stored={self.stored.value})"


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Hand an event to one listener; ``push_id`` lets it drop one handed on twice."""

    listener: Listener
    event: dict[str, Any]
    push_id: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitHold:
    """Tell the core (``held``) which of these listeners hold the events ``push_ids``
    (they acknowledged them, or for an old client, they are in its socket buffer), and
    which did not in time."""

    token: int
    listeners: tuple[Listener, ...]
    push_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Disconnect:
    listener: Listener


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to show; icon and sound are uni's names, the driver finds files."""

    title: str
    body: str
    urgency: str = "normal"
    icon: str | None = None
    #: "system", "none", or a channel's soundName.
    sound: str = "system"
    cover: bool = False
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Show:
    """Show ``notice``, then report ``shown(ticket, ok)``; a click is ``activated(ticket)``."""

    ticket: str
    notice: Notice


@dataclass(frozen=True, slots=True)
class Close:
    """Take the notification the notifier knows as ``identifier`` off the screen: a
    server that did not answer in time showed it after all, and it went elsewhere."""

    identifier: str


@dataclass(frozen=True, slots=True)
class Persist:
    """Write these inbox states in one commit. ``waiting``: those of them held only
    for want of a notification server, so the next run shows them when it has one."""

    states: tuple[tuple[str, State], ...]
    waiting: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SavePendingClick:
    data: dict[str, Any] | None  # None: clear it
    #: The id it is handed over with, kept with it: a replay after a crash carries the
    #: same one, so a client that took it before the crash drops the copy.
    click_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OpenUrl:
    url: str


@dataclass(frozen=True, slots=True)
class Launch:
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Receipt:
    msg_id: str
    taskid: str | None
    event: ReceiptEvent


@dataclass(frozen=True, slots=True)
class Remember:
    """Record a shown notification in the history."""

    entry: str
    source: Literal["push", "local"]
    channel: str | None
    title: str
    content: str
    data: dict[str, Any]
    #: Why it could not be shown (recorded as not shown); None: it was shown.
    not_shown: str | None = None
    #: Kept so that choosing it in the tray opens it as its notification's click did.
    open_url: str | None = None


@dataclass(frozen=True, slots=True)
class MarkClicked:
    entry: str


@dataclass(frozen=True, slots=True)
class SaveChannel:
    channel: Channel


@dataclass(frozen=True, slots=True)
class Schedule:
    sched_id: str
    params: dict[str, Any]
    due: float


@dataclass(frozen=True, slots=True)
class Unschedule:
    sched_id: str


@dataclass(frozen=True, slots=True)
class SaveQuiet:
    """Keep the quiet hours toggle and the count held back, for the next start."""

    override: bool | None
    unread: int


@dataclass(frozen=True, slots=True)
class Warn:
    """Something the user should read in the log."""

    text: str
    detail: dict[str, Any] = field(default_factory=dict)


Action = (
    Send
    | AwaitHold
    | Disconnect
    | Show
    | Close
    | Persist
    | SavePendingClick
    | OpenUrl
    | Launch
    | Receipt
    | Remember
    | MarkClicked
    | SaveChannel
    | Schedule
    | Unschedule
    | SaveQuiet
    | Warn
)


# -- event data --------------------------------------------------------------------------


def event_data(message: PushMessage, uuid: str, appid: str) -> dict[str, Any]:
    """The ``data`` of a receive or click event, in uni's shape: the payload as the
    sender gave it (object or string), other fields the sender set ride along. A title
    or content the sender left out is left out here too, as in uniCloud's message (the
    JSON of the fields given): uni-im's transparent pushes have neither, and pages
    default them with ``{title: appName, content: appName, ...res.data}``.

    Beside them, as uni's App runtime has them (html5plus PushMessage.toJSON in
    dcloudio/H5P.Android feature/aps): ``__UUID__``, the message's id, the same in its
    receive and in the click on its notification (pages drop duplicates by it; here
    ``uuid``, the gateway's message id, so a replay after a restart keeps it), never
    the sender's; and ``appid``, the message's own if it has one, else the app's."""
    data: dict[str, Any] = {"unipush_version": UNIPUSH_VERSION}
    if message.title:
        data["title"] = message.title
    if message.content:
        data["content"] = message.content
    if message.payload is not None:
        data["payload"] = message.payload
    if message.force_notification:
        data["force_notification"] = True
    for key, value in message.extra.items():
        data.setdefault(key, value)
    data["__UUID__"] = uuid
    if not (isinstance(data.get("appid"), str) and data["appid"]):
        data["appid"] = appid
    return data


def receive_event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "receive", "data": data}


def click_event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "click", "data": data}


def wants_screen(message: PushMessage, listeners: int) -> bool:
    """App online (a listener subscribed) gets receive unless the sender forces a banner."""
    return message.force_notification or listeners == 0


#: What an open_url may not carry: C0, space, DEL, C1, and the invisible format
#: characters (bidi controls, zero-width ones, BOM) a sender could use to make what
#: the history shows differ from what opens. A real URL percent-encodes them all.
_NOT_IN_URL = re.compile(
    r"[\x00-\x20\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    r"\u2060-\u206f\ufeff\ud800-\udfff]"
)


def open_url_refusal(url: str) -> str | None:
    """Why the desktop will not open ``url`` on a click, or None. Only web pages: a
    push must not make the desktop open file:, javascript: or an app's own scheme, nor
    hand the browser's command line a URL with controls or invisible characters in it,
    nor one with no host."""
    if not url.lower().startswith(("http://", "https://")):
        return "refused to open a non-http(s) open_url"
    if _NOT_IN_URL.search(url):
        return (
            "refused to open an open_url with a control, space or invisible character "
            "(percent-encode it)"
        )
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        return "refused to open an open_url with no host"
    return None


def openable(url: str) -> bool:
    return open_url_refusal(url) is None


# -- the flood ---------------------------------------------------------------------------


@dataclass
class Flood:
    """Counts notifications shown in a sliding window; past ``threshold`` the rest are
    summed up, so a backlog of thousands does not bury the desktop."""

    threshold: int = 10
    window: float = 10.0
    shown: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        while self.shown and self.shown[0] <= now - self.window:
            self.shown.popleft()
        if self.threshold and len(self.shown) >= self.threshold:
            return False
        self.shown.append(now)
        return True

    def release(self, at: float) -> None:
        """The notification admitted at ``at`` was not shown (no server, refused): it
        takes no place in the window, or the pushes an outage held would be summed up
        when the server is back instead of shown as they would have been."""
        with contextlib.suppress(ValueError):  # out of the window already, or a new Flood
            self.shown.remove(at)


@dataclass
class _Summary:
    started: float
    last: float
    items: list[dict[str, Any]] = field(default_factory=list)

    def due(self, window: float) -> float:
        return min(self.last + SUMMARY_DEBOUNCE_S, self.started + window)


# -- quiet hours ---------------------------------------------------------------------------


def parse_quiet_hours(text: str | None) -> tuple[int, int] | None:
    """``"22:00-07:00"`` as minutes after local midnight (start, end); a span over
    midnight has end < start. Empty or None: no schedule. Raises ValueError naming
    the rule."""
    if not text:
        return None
    try:
        start_text, end_text = text.split("-")
        start, end = _minutes(start_text), _minutes(end_text)
    except ValueError:
        raise ValueError(
            f"quiet_hours must be HH:MM-HH:MM in local time, e.g. 22:00-07:00 (got {text!r})"
        ) from None
    if start == end:
        raise ValueError(f"quiet_hours must not start and end at the same time (got {text!r})")
    return start, end


def _minutes(text: str) -> int:
    hours, minutes = text.strip().split(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(text)
    return h * 60 + m


def in_quiet_hours(span: tuple[int, int], local_s: float) -> bool:
    """``local_s``: seconds after local midnight. The start is in, the end is out."""
    start, end = span[0] * 60, span[1] * 60
    t = local_s % DAY_S
    return start <= t < end if start < end else t >= start or t < end


def next_quiet_edge(span: tuple[int, int], local_s: float) -> float:
    """Seconds from ``local_s`` to the schedule's next start or end (never 0)."""
    t = local_s % DAY_S
    return min(((edge * 60 - t) % DAY_S) or DAY_S for edge in span)


# -- tickets: what a shown notification does when clicked --------------------------------


@dataclass(frozen=True, slots=True)
class _Ticket:
    kind: Literal["push", "local", "summary", "quiet"]
    data: dict[str, Any]
    open_url: str | None = None
    msg_id: str | None = None
    taskid: str | None = None
    channel: str | None = None
    #: Local notifications: when to show, recorded in the history.
    when: int | None = None
    notice: Notice | None = None
    #: A delayed local notification: nobody waits for its answer, so a failure is
    #: recorded in the history and it is tried again for a while (see ``_unshown``).
    scheduled: bool = False
    #: Its history entry when that is not the ticket (a retried delayed notification).
    entry: str | None = None
    #: A delayed one: when it was first due, and when this attempt was made.
    first_due: float | None = None
    fired_at: float | None = None
    #: A delayed one: its createPushMessage options, for a retry.
    params: dict[str, Any] | None = None
    #: A push: its place in the flood's window (given back if it is not shown).
    flood_at: float | None = None
    #: A flood summary: the data of every message it stands for, oldest first.
    items: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Config:
    app_name: str = "unipush-bridge"
    app_command: tuple[str, ...] = ()
    flood_threshold: int = 10
    flood_window: float = 10.0
    #: Minutes after local midnight (start, end), see ``parse_quiet_hours``.
    quiet_hours: tuple[int, int] | None = None
    #: Channels of importance 4 are shown during quiet hours.
    quiet_breakthrough: bool = False
    #: Held pushes may take this much memory (about); past it ``held_full`` is true
    #: and the driver stops taking pushes from the gateway, which keeps them.
    max_held_bytes: int = MAX_HELD_BYTES
    #: The uni appId, in every event's data as ``appid`` (as uni's App runtime has it).
    appid: str = ""


class Core:
    """The daemon's uni-push runtime. Every method takes facts and returns actions."""

    def __init__(self, config: Config, new_id: Callable[[], str]) -> None:
        self.config = config
        self.flood = Flood(config.flood_threshold, config.flood_window)
        self._new_id = new_id
        self.listeners: list[Listener] = []
        #: In the order the pushes came: held ones are handed over in this order.
        self.entries: dict[str, Entry] = {}
        self.held_ledger = HeldLedger()
        #: The tokens of the round of held pushes out with the listeners (none: no round
        #: is out): its own, and one for each listener that subscribed while it was out.
        self._round: set[int] = set()
        self.pending_click: dict[str, Any] | None = None
        #: The id the pending click is handed over with (on disk with it).
        self.pending_click_id: str | None = None
        self.channels: dict[str, Channel] = {}
        self.scheduled: dict[str, tuple[dict[str, Any], float]] = {}
        self._tickets: OrderedDict[str, _Ticket] = OrderedDict()
        self._holds: dict[int, tuple[str, ...]] = {}
        #: Held only because no notification server was there (kept on disk with the
        #: held state, see ``Persist.waiting``): shown when one is back, unless a
        #: listener holds them first. A listener they are out with that dies before
        #: it acknowledges them leaves them waiting again.
        self._wait_server: dict[str, None] = {}
        #: The last show failed for want of a server, and none was found since: what
        #: waits for one is not shown now, it waits for ``server_back``.
        self._no_server = False
        #: Summaries (flood, quiet hours) not shown for want of a server, in order.
        self._summaries_waiting: list[_Ticket] = []
        #: A kept click out with listeners: its data and the listeners it went to.
        self._click_holds: dict[int, tuple[dict[str, Any], tuple[Listener, ...], str]] = {}
        self._next_token = 0
        self._summary: _Summary | None = None
        #: The toggle: True/False until changed, None: follow the schedule.
        self.quiet_override: bool | None = None
        #: Whether quiet hours held notifications back at the last look at the clock.
        self.quiet = False
        #: Held back during this quiet time (their summary comes when it ends).
        self.quiet_unread = 0
        self.counters = {
            "received": 0,
            "duplicates": 0,
            "notified": 0,
            "coalesced": 0,
            "clicks": 0,
            # Delayed notifications not shown when due (no server), and those shown later.
            "not_shown": 0,
            "shown_late": 0,
            # Held back by quiet hours (recorded in the history, not shown).
            "quiet": 0,
            # No phone maker's channel, and no app listened: online only, or before
            # the sender's ttl ended.
            "missed": 0,
        }

    # -- settings that change live ------------------------------------------------------

    def reconfigure(self, config: Config) -> None:
        if (config.flood_threshold, config.flood_window) != (
            self.config.flood_threshold,
            self.config.flood_window,
        ):
            self.flood = Flood(config.flood_threshold, config.flood_window)
        self.config = config

    # -- start: what the last run left ------------------------------------------------------

    def restore(
        self,
        unfinished: Iterable[tuple[str, PushMessage, State]],
        channels: Iterable[Channel] = (),
        scheduled: Iterable[tuple[str, dict[str, Any], float]] = (),
        pending_click: dict[str, Any] | None = None,
        pending_click_id: str | None = None,
        quiet: tuple[bool | None, int] = (None, 0),
        local: float | None = None,
        now: float | None = None,
        waiting: Iterable[str] = (),
    ) -> list[Action]:
        """Take what the store holds; pending entries (recorded, never handed on) are
        dispatched again now, held ones wait for a listener, and those of them in
        ``waiting`` (held only for want of a notification server) for a server too: the
        driver calls ``server_back`` once one is there. ``quiet``: the toggle and
        the count quiet hours held back (it was quiet when the last run stopped if
        any; a quiet time that ended meanwhile gives its summary now). ``now``: the
        flood's clock, so a backlog a crash left pending is summed up as the stream
        would have been."""
        self.quiet_override, self.quiet_unread = quiet
        self.quiet = self.quiet_unread > 0
        actions = [] if local is None else self.local_time(local)
        replay: list[tuple[str, PushMessage]] = []
        for msg_id, message, state in unfinished:
            if state is State.PENDING:
                replay.append((msg_id, message))
            elif state is State.HELD:
                self.entries[msg_id] = Entry(
                    msg_id, message, State.HELD, State.HELD, ledger=self.held_ledger
                )
        for msg_id in waiting:
            if msg_id in self.entries and self.entries[msg_id].state is State.HELD:
                self.entries[msg_id].waits = True
                self._wait_server[msg_id] = None
        self.channels = {c.channel_id: c for c in channels}
        self.scheduled = {sid: (params, due) for sid, params, due in scheduled}
        self.pending_click = pending_click
        # One kept by a run from before click ids were kept gets one now.
        if pending_click is not None and pending_click_id is None:
            pending_click_id = f"click-{self._new_id()}"
        self.pending_click_id = pending_click_id
        return actions + self.dispatch(replay, now)

    # -- pushes ------------------------------------------------------------------------------

    def recorded(
        self,
        pushes: list[tuple[str, PushMessage]],
        duplicates: int,
        now: float,
        local: float | None = None,
    ) -> list[Action]:
        """Pushes now durably recorded (``duplicates``: redeliveries the store dropped).
        ``now`` is only the flood's clock: the driver gives monotonic time, so a step
        of the wall clock neither stretches nor ends a flood window. ``local``: seconds
        after local midnight, for quiet hours."""
        self.counters["received"] += len(pushes)
        self.counters["duplicates"] += duplicates
        actions = [] if local is None else self.local_time(local)
        return actions + self.dispatch(pushes, now)

    def dispatch(self, pushes: list[tuple[str, PushMessage]], now: float | None) -> list[Action]:
        """Route each push: receive to every listener, a notification, or hold."""
        actions: list[Action] = []
        receiving: list[str] = []
        persist: list[tuple[str, State]] = []
        for msg_id, message in pushes:
            entry = self.entries.get(msg_id)
            if entry is None:
                entry = self.entries[msg_id] = Entry(
                    msg_id, message, State.PENDING, State.PENDING, ledger=self.held_ledger
                )
            elif entry.state is not State.PENDING:
                continue  # already on its way
            data = event_data(message, msg_id, self.config.appid)
            if not wants_screen(message, len(self.listeners)):
                self._receive(entry, receiving)
                continue
            offline = message.offline
            if offline == "show" and not (message.title or message.content):
                offline = "hold"  # nothing to show (from a gateway that did not say)
            if offline != "show" and not message.force_notification:
                # No phone maker's channel (settings.strategy 3, or a transparent push):
                # a phone shows nothing while its app is closed. The next listener gets
                # it, or, online only, nobody: uni-im sends its chat syncs with ttl -1
                # because it reloads from its database when it opens.
                if offline == "drop":
                    entry.state = step(entry.state, Step.MISSED)
                    del self.entries[msg_id]
                    persist.append((msg_id, State.DONE))
                    self.counters["missed"] += 1
                else:
                    entry.state = step(entry.state, Step.NOBODY)
                    persist.append((msg_id, State.HELD))
                continue
            channel = self.channel(str(message.extra.get("channelId") or localpush.DEFAULT_CHANNEL))
            if self._held_back(channel):
                # Quiet: in the history with its click data, not on the screen (and
                # no display receipt). Receive events, above, are not affected.
                entry.state = step(step(entry.state, Step.TO_SCREEN), Step.SHOWN)
                del self.entries[msg_id]
                persist.append((msg_id, State.DONE))
                actions += self._quiet_record(
                    msg_id,
                    "push",
                    channel.channel_id,
                    self._shown_title(message),
                    message.content,
                    data,
                    message.open_url,
                )
                continue
            if now is not None and not self.flood.admit(now):
                actions += self._coalesce(data, now)
                if self.listeners:
                    self._receive(entry, receiving)
                else:
                    entry.state = step(entry.state, Step.NOBODY)
                    persist.append((msg_id, State.HELD))
                continue
            if self._summary is not None:
                # The window moved on while a summary waits: it goes first, so the
                # screen never shows a newer message before the summary of older ones.
                actions.append(self._flush_summary())
            entry.state = step(entry.state, Step.TO_SCREEN)
            actions.append(self._show_push(entry, data, now))
        if persist:
            actions.append(self._persist(persist))
        actions += self._to_listeners(receiving, self.listeners)
        return actions + self._hand_over()

    def _receive(self, entry: Entry, receiving: list[str]) -> None:
        """A push for the listeners: out now, or, while held ones are still being
        handed over, behind them (a listener gets its pushes in the order they came)."""
        if self.held_ledger.count:
            entry.state = step(entry.state, Step.QUEUED)  # on disk it stays pending
        else:
            entry.state = step(entry.state, Step.TO_LISTENERS)
            receiving.append(entry.msg_id)

    def _hand_over(self) -> list[Action]:
        """The next round of held pushes to the listeners, oldest first, if none is out
        with them: up to HANDOVER_BYTES of events (at least one), so a listener that
        reads is never cut for its backlog, however long it was away."""
        if self._round or not self.listeners or not self.held_ledger.count:
            return []
        ids: list[str] = []
        size = 0
        for msg_id, entry in self.entries.items():
            if entry.state is not State.HELD:
                continue
            if ids and (size + entry.size > HANDOVER_BYTES or len(ids) >= HANDOVER_EVENTS):
                break
            entry.state = step(entry.state, Step.TO_LISTENERS)
            ids.append(msg_id)
            size += entry.size
        if not ids:
            return []
        actions = self._to_listeners(ids, self.listeners)
        self._round = {self._next_token}
        return actions

    def _join_round(self, listener: Listener) -> list[Action]:
        """A listener that subscribed while a round is out gets it too: else it waited
        for the round's listeners (a stuck one: its hold timeout), and got the round
        after the newer pushes it had meanwhile if they left without holding it."""
        if not self._round:
            return []
        token = min(self._round)
        ids = [
            i
            for i in self._holds.get(token, ())
            if (entry := self.entries.get(i)) is not None and entry.state is State.RECEIVING
        ]
        actions = self._to_listeners(ids, [listener])
        if actions:
            self._round.add(self._next_token)
        return actions

    def held_full(self) -> bool:
        """Held pushes take ``max_held_bytes`` or more: take no more from the gateway
        (it keeps them) until a listener took some or their ttl ended."""
        return self.held_ledger.memory() >= self.config.max_held_bytes

    def _shown_title(self, message: PushMessage) -> str:
        """A push without a title (only content, or a forced transparent one) is shown
        under the app's name, as a phone shows it; its event data keeps ``""``."""
        return message.title or self.config.app_name

    def _show_push(self, entry: Entry, data: dict[str, Any], flood_at: float | None) -> Show:
        message = entry.message
        extra = message.extra
        channel = self.channel(str(extra.get("channelId") or localpush.DEFAULT_CHANNEL))
        category = extra.get("category")
        notice = Notice(
            title=self._shown_title(message),
            body=message.content,
            urgency=channel.urgency,
            sound=channel.sound_name or "system",
            category=category if isinstance(category, str) else None,
        )
        ticket = _Ticket(
            "push",
            data,
            message.open_url,
            entry.msg_id,
            message.taskid,
            channel.channel_id,
            notice=notice,
            flood_at=flood_at,
        )
        return self._ticketed(ticket, notice)

    def _event_data(self, msg_id: str) -> dict[str, Any]:
        return event_data(self.entries[msg_id].message, msg_id, self.config.appid)

    def _ticketed(self, ticket: _Ticket, notice: Notice, key: str | None = None) -> Show:
        key = self._new_id() if key is None else key
        self._tickets[key] = ticket
        while len(self._tickets) > MAX_TICKETS:
            self._tickets.popitem(last=False)
        return Show(key, notice)

    def _to_listeners(self, msg_ids: list[str], listeners: Iterable[Listener]) -> list[Action]:
        """Receive events for these entries to ``listeners``, then a wait for one to hold them."""
        targets = tuple(listeners)
        if not msg_ids:
            return []
        actions: list[Action] = [
            Send(listener, receive_event(self._event_data(i)), i)
            for i in msg_ids
            for listener in targets
        ]
        self._next_token += 1
        self._holds[self._next_token] = tuple(msg_ids)
        actions.append(AwaitHold(self._next_token, targets, tuple(msg_ids)))
        return actions

    def held(
        self,
        token: int,
        holders: Iterable[Listener],
        stuck: Iterable[Listener],
        now: float | None = None,
    ) -> list[Action]:
        """The listeners of a hold wait that hold the events, and those stuck past the
        driver's time limit (each is disconnected; only its own copies were lost).
        Events no listener held that were waiting for a notification server go back
        to waiting for it, or are shown now if it is back (``now``: the flood's clock)."""
        msg_ids = self._holds.pop(token, ())
        holders = list(holders)
        # A round that other listeners still have is not held again before they tell.
        in_round = token in self._round
        self._round.discard(token)
        if in_round and holders:
            self._round.clear()  # done: the others' copies of it are theirs alone
        elif in_round and self._round:
            msg_ids = ()
        actions: list[Action] = []
        for listener in stuck:
            actions.append(Disconnect(listener))
            actions.append(Warn("a listener stopped reading; disconnecting it"))
            actions += self.unsubscribed(listener)
        if token in self._click_holds:
            data, tried, click_id = self._click_holds.pop(token)
            return actions + self._click_held(data, tried, bool(holders), click_id)
        done: list[tuple[str, State]] = []
        now_held: list[str] = []
        for msg_id in msg_ids:
            entry = self.entries.get(msg_id)
            if entry is None or entry.state is not State.RECEIVING:
                continue
            if holders:
                entry.state = step(entry.state, Step.HELD_BY_LISTENER)
                done.append((msg_id, State.DONE))
                del self.entries[msg_id]
                self._wait_server.pop(msg_id, None)
            else:
                entry.state = step(entry.state, Step.NO_LISTENER_HELD)
                now_held.append(msg_id)
                if entry.stored is not State.HELD or entry.waits != (msg_id in self._wait_server):
                    done.append((msg_id, State.HELD))
        if done:
            actions.append(self._persist(done))
        if self.listeners:
            # The next round of what is held (another listener that came while these
            # were in flight takes them so, in the order they came).
            actions += self._hand_over()
        elif not self._no_server:
            # No app ever had them, and the server they waited for is back: shown now
            # (those of the rounds that were not out yet too).
            back = [
                i
                for i in self._wait_server
                if (entry := self.entries.get(i)) is not None and entry.state is State.HELD
            ]
            for msg_id in back:
                del self._wait_server[msg_id]
                entry = self.entries[msg_id]
                entry.state = step(entry.state, Step.SERVER_BACK)
            actions += self.dispatch([(i, self.entries[i].message) for i in back], now)
        return actions

    def shown(self, ticket: str, ok: bool, reason: str = "", maybe: bool = False) -> list[Action]:
        """The notification server's answer to a Show. ``maybe``: it did not answer in
        time, but may show it later (a hung server runs again); the push goes on as
        one not shown, and ``shown_late`` says how it ended."""
        info = self._tickets.get(ticket)
        if info is None:
            return []
        if not ok and not maybe:
            self._tickets.pop(ticket, None)
        if ok or maybe or reason == NO_SERVER:  # a refusal says nothing of the server
            self._no_server = not ok
        if maybe and info.kind in ("summary", "quiet"):
            return []  # shown late, or not (its count back): ``shown_late``
        if info.kind in ("summary", "quiet"):
            if not ok and reason == NO_SERVER:
                return self._summary_waits(info)
            if not ok:
                what = "flood summary" if info.kind == "summary" else "quiet hours summary"
                return [Warn(f"{what} not shown", {"reason": reason})]
            return []
        if info.kind == "local":
            if not ok:  # a timed out one that is not scheduled: the caller was told
                return self._unshown(ticket, info, reason) if info.scheduled else []
            return [self._local_on_screen(ticket, info, late=info.entry is not None)]
        assert info.msg_id is not None
        entry = self.entries.get(info.msg_id)
        if entry is None or entry.state is not State.SHOWING:
            return []
        if ok:
            entry.state = step(entry.state, Step.SHOWN)
            return self._push_on_screen(ticket, info)
        if info.flood_at is not None:
            self.flood.release(info.flood_at)
        # No server: the notifier warns once per outage, not once per push (issue 12
        # item 10), and so it does for a server that did not answer in time; any
        # other failure is this notification's own and is said.
        quiet = reason == NO_SERVER or maybe
        detail = {"reason": reason}
        if reason == NO_SERVER:  # until a listener holds it (one that dies first leaves it)
            self._wait_server[info.msg_id] = None
        if self.listeners and self.held_ledger.count:
            # Held ones are being handed over: it goes to the listeners after them.
            entry.state = step(entry.state, Step.NOBODY)
            return [
                *([] if quiet else [Warn("notification failed, delivered as receive", detail)]),
                self._persist([(info.msg_id, State.HELD)]),
                *self._hand_over(),
            ]
        if self.listeners:
            entry.state = step(entry.state, Step.TO_LISTENERS)
            return [
                *([] if quiet else [Warn("notification failed, delivered as receive", detail)]),
                *self._to_listeners([info.msg_id], self.listeners),
            ]
        entry.state = step(entry.state, Step.NOBODY)
        return [
            *([] if quiet else [Warn("notification failed, held for the next listener", detail)]),
            self._persist([(info.msg_id, State.HELD)]),
        ]

    def shown_late(self, ticket: str, identifier: str | None) -> list[Action]:
        """How a show that timed out (``shown(..., maybe=True)``) ended: the server
        showed it after all as ``identifier``, or never (None: it went away).

        Shown late: a push no listener has yet is done, as if shown in time (one that
        went to a listener meanwhile is closed, so it is not delivered twice); a
        delayed local notification is shown late and its retry dropped; a
        ``createPushMessage`` that failed is closed (the caller was told it failed).
        Never shown: a push waits for a server, as one held for want of a server."""
        info = self._tickets.get(ticket)
        if info is None:
            return [] if identifier is None else [Close(identifier)]
        if identifier is None:
            self._tickets.pop(ticket, None)
            return self._never_shown(info)
        if info.kind in ("summary", "quiet"):
            return []
        if info.kind == "local":
            if not info.scheduled:
                self._tickets.pop(ticket, None)
                return [Close(identifier)]
            return self._local_shown_late(ticket, info)
        assert info.msg_id is not None and info.notice is not None
        entry = self.entries.get(info.msg_id)
        if entry is None or entry.state is not State.HELD:
            self._tickets.pop(ticket, None)
            if entry is not None and entry.state is State.RECEIVING:
                self._wait_server[info.msg_id] = None  # if its listener dies: shown
            return [Close(identifier)]
        entry.state = step(entry.state, Step.SHOWN_LATE)
        self._wait_server.pop(info.msg_id, None)
        return self._push_on_screen(ticket, info)

    def _push_on_screen(self, ticket: str, info: _Ticket) -> list[Action]:
        """A push the server showed (in time or late): counted, its display receipt,
        its history entry, and done."""
        assert info.msg_id is not None and info.notice is not None
        del self.entries[info.msg_id]
        self.counters["notified"] += 1
        return [
            Receipt(info.msg_id, info.taskid, "display"),
            Remember(
                ticket,
                "push",
                info.channel,
                info.notice.title,
                info.notice.body,
                info.data,
                open_url=info.open_url,
            ),
            self._persist([(info.msg_id, State.DONE)]),
        ]

    def _summary_waits(self, info: _Ticket) -> list[Action]:
        """A summary no server took waits for one. The quiet one's count goes back (on
        disk too): it comes when a server is back (server_back) or at the next start;
        a flood's is summed up again then. The messages a summary stands for are in the
        history and held, but nothing else tells the user they came."""
        if info.kind == "quiet":
            self.quiet_unread += int(info.data["count"])
            return [SaveQuiet(self.quiet_override, self.quiet_unread)]
        self._summaries_waiting.append(info)
        return []

    def _local_on_screen(self, ticket: str, info: _Ticket, late: bool) -> Remember:
        """A local notification the server showed (``late``: after its due time, or
        after its show timed out): counted, and its history entry."""
        assert info.notice is not None
        self.counters["notified"] += 1
        if late:
            self.counters["shown_late"] += 1
        shown = {**info.data, "when": info.when} if info.when is not None else info.data
        return Remember(
            info.entry or ticket, "local", info.channel, info.notice.title, info.notice.body, shown
        )

    def _never_shown(self, info: _Ticket) -> list[Action]:
        """A timed out show the server never answered: as one no server took."""
        if info.kind in ("summary", "quiet"):
            return self._summary_waits(info)
        if info.kind == "local" or info.msg_id is None:
            return []  # the caller was told; a delayed one is tried again (``_unshown``)
        entry = self.entries.get(info.msg_id)
        if entry is None or entry.state not in (State.HELD, State.RECEIVING):
            return []
        self._wait_server[info.msg_id] = None
        if entry.state is State.HELD and not self._no_server and not self.listeners:
            del self._wait_server[info.msg_id]
            entry.state = step(entry.state, Step.SERVER_BACK)
            return self.dispatch([(info.msg_id, entry.message)], None)
        if entry.state is State.HELD and not entry.waits:
            return [self._persist([(info.msg_id, State.HELD)])]  # so a restart shows it
        return []

    def _local_shown_late(self, ticket: str, info: _Ticket) -> list[Action]:
        """A delayed local notification shown after its show timed out: its history
        entry becomes shown, and the retry ``_unshown`` scheduled is dropped."""
        entry = info.entry or ticket
        actions: list[Action] = []
        for sched_id, (params, _) in list(self.scheduled.items()):
            retry = params.get(RETRY_KEY)
            if isinstance(retry, dict) and retry.get("entry") == entry:
                del self.scheduled[sched_id]
                actions.append(Unschedule(sched_id))
        return [*actions, self._local_on_screen(ticket, info, late=True)]

    def _persist(self, states: list[tuple[str, State]]) -> Persist:
        """Write ``states``; a held one that waits for a server is written as such."""
        waiting: list[str] = []
        for msg_id, state in states:
            waits = state is State.HELD and msg_id in self._wait_server
            if waits:
                waiting.append(msg_id)
            entry = self.entries.get(msg_id)
            if entry is not None:
                entry.stored = state
                entry.waits = waits
        return Persist(tuple(states), tuple(waiting))

    # -- the flood summary ------------------------------------------------------------------

    def _coalesce(self, data: dict[str, Any], now: float) -> list[Action]:
        self.counters["coalesced"] += 1
        if self._summary is None:
            self._summary = _Summary(started=now, last=now)
        self._summary.items.append(data)
        self._summary.last = now
        return []

    # -- listeners ----------------------------------------------------------------------------

    def subscribed(self, listener: Listener, now: float | None = None) -> list[Action]:
        """A listener subscribed: it gets what was held, then the click kept for it.
        ``now`` (wall clock): a held push whose ttl has ended is not handed on."""
        if listener in self.listeners:
            return []
        actions: list[Action] = [] if now is None else self._expire_held(now)
        self.listeners.append(listener)
        # Those waiting for a server stay waiting until the listener holds them: one
        # killed before it acknowledged them leaves them to the server (``held``).
        # In rounds: the first now, each next one once a listener holds the last (one
        # out with others already: this listener gets it too).
        actions += self._join_round(listener) if self._round else self._hand_over()
        if self.pending_click is not None:
            # Kept on disk until the listener has it: a crash in between keeps it.
            data, self.pending_click = self.pending_click, None
            click_id, self.pending_click_id = self.pending_click_id, None
            actions += self._hand_click(data, (listener,), click_id or f"click-{self._new_id()}")
        return actions

    def server_back(self, now: float) -> list[Action]:
        """A notification server is there again: the pushes held only because none was
        are shown now, as they would have been when they came (the flood rule and
        quiet hours apply; ``now`` is the flood's clock). A listener that subscribed
        meanwhile has them already; those held on purpose (no phone maker's channel,
        past a flood's threshold) stay held."""
        waiting, self._summaries_waiting = self._summaries_waiting, []
        self._no_server = False
        # With a listener, held ones go to it in rounds; without, they are shown now.
        ids = [
            msg_id
            for msg_id in self._wait_server
            if msg_id in self.entries
            and self.entries[msg_id].state is State.HELD
            and not self.listeners
        ]
        # Those out with a listener, or in its next rounds, stay waiting: if it leaves
        # before it holds them, ``held`` shows them then.
        self._wait_server = {
            msg_id: None
            for msg_id in self._wait_server
            if msg_id in self.entries
            and self.entries[msg_id].state in (State.RECEIVING, State.HELD)
            and msg_id not in ids
        }
        for msg_id in ids:
            entry = self.entries[msg_id]
            entry.state = step(entry.state, Step.SERVER_BACK)
        # A quiet time that ended with no server to show its summary: shown now.
        actions = [] if self.quiet else self._quiet_summary()
        actions += self.dispatch([(msg_id, self.entries[msg_id].message) for msg_id in ids], now)
        for info in waiting:
            if info.kind == "summary":
                # Its messages came after the ones an outage held (those went first in
                # their flood): summed up again after them, with any new flood's.
                if self._summary is None:
                    self._summary = _Summary(started=now, last=now)
                self._summary.items[:0] = info.items
        return actions

    def _hand_click(
        self, data: dict[str, Any], listeners: tuple[Listener, ...], click_id: str
    ) -> list[Action]:
        """The kept click to ``listeners``, then a wait for one of them to hold it."""
        self._next_token += 1
        self._click_holds[self._next_token] = (data, listeners, click_id)
        return [
            *(Send(listener, click_event(data), click_id) for listener in listeners),
            AwaitHold(self._next_token, listeners, (click_id,)),
        ]

    def _click_held(
        self, data: dict[str, Any], tried: tuple[Listener, ...], held: bool, click_id: str
    ) -> list[Action]:
        if self.pending_click is not None:  # a newer click came meanwhile: it stays
            return []
        if held:
            return [SavePendingClick(None)]
        # Not taken. A listener that subscribed while it was in flight got nothing (it
        # was not pending then): it takes it now, else the next one to subscribe does.
        others = tuple(x for x in self.listeners if x not in tried)
        if others:
            return self._hand_click(data, others, click_id)
        self.pending_click, self.pending_click_id = data, click_id
        return []

    def unsubscribed(self, listener: Listener) -> list[Action]:
        if listener in self.listeners:
            self.listeners.remove(listener)
        return []

    # -- clicks ---------------------------------------------------------------------------

    def activated(self, ticket: str) -> list[Action]:
        """The user clicked a notification we showed."""
        info = self._tickets.get(ticket)
        if info is None:
            return []
        self.counters["clicks"] += 1
        if info.kind == "quiet":
            # It stands for many messages, none of them the app's click: it opens
            # nothing and emits no click (each one's click data is in the history).
            return []
        actions: list[Action] = []
        if info.msg_id is not None:
            actions.append(Receipt(info.msg_id, info.taskid, "click"))
        if info.kind != "summary":
            actions.append(MarkClicked(info.entry or ticket))
        return actions + self._click(info)

    def history_clicked(
        self, entry: str, data: dict[str, Any], open_url: str | None = None
    ) -> list[Action]:
        """A history entry chosen in the tray (issue 14 item 3): the same click as its
        notification's, from the click data and open_url the history kept (its ticket
        may be long gone)."""
        self.counters["clicks"] += 1
        return [MarkClicked(entry), *self._click(_Ticket("push", data, open_url, entry=entry))]

    def _click(self, info: _Ticket) -> list[Action]:
        """What a click on ``info`` does: open its URL, or a click to the listeners, or
        kept for the next one (and the app launched)."""
        actions: list[Action] = []
        if info.open_url:
            why = open_url_refusal(info.open_url)
            if why is None:
                return [*actions, OpenUrl(info.open_url)]
            return [*actions, Warn(why, {"open_url": info.open_url[:200]})]
        if self.listeners:
            event = click_event(info.data)
            return [*actions, *(Send(listener, event) for listener in self.listeners)]
        self.pending_click = info.data
        self.pending_click_id = f"click-{self._new_id()}"
        actions += [
            SavePendingClick(info.data, self.pending_click_id),
            Warn("click kept for the next listener"),
        ]
        if self.config.app_command:
            actions.append(Launch(self.config.app_command))
        return actions

    # -- local notifications ------------------------------------------------------------------

    def create_push_message(
        self, params: dict[str, Any], now: float, local: float | None = None
    ) -> list[Action]:
        """createPushMessage: a Show now, or a Schedule for later (raises ApiFail);
        during quiet hours a Remember (recorded, not shown) instead of the Show."""
        push = localpush.parse_local_push(params)
        channel = self.channel(push.channel_id)
        actions = [] if local is None else self.local_time(local)
        if channel.channel_id != push.channel_id:
            actions.append(
                Warn(
                    "createPushMessage: no such channel; shown on the default one (create "
                    "it with setPushChannel)",
                    {"channelId": push.channel_id},
                )
            )
        if push.delay > 0:
            sched_id = self._new_id()
            later = {k: v for k, v in params.items() if k != RETRY_KEY} | {"delay": 0}
            due = now + push.delay
            self.scheduled[sched_id] = (later, due)
            return [*actions, Schedule(sched_id, later, due)]
        if self._held_back(channel):
            return actions + self._quiet_local(push, None)
        return [*actions, self._show_local(push)]

    def _quiet_local(self, push: localpush.LocalPush, entry: str | None) -> list[Action]:
        """A local notification quiet hours hold back: recorded, not shown."""
        key = entry or self._new_id()
        title, data = self._local_data(push, key)
        if push.when is not None:
            data["when"] = push.when
        return self._quiet_record(key, "local", push.channel_id, title, push.content, data)

    def _local_data(self, push: localpush.LocalPush, uuid: str) -> tuple[str, dict[str, Any]]:
        """The title shown and the click's data: uni's PushMessage carries the page's
        ``path``, and ``channelId`` and ``category`` when the page set them; and, as
        html5plus's createMessage makes it (dcloudio/H5P.Android feature/aps
        AbsPushService.createMessage, PushMessage.toJSON), ``__UUID__`` (here the
        notification's own id, the one its history entry has) and ``appid``."""
        title = push.title if push.title is not None else self.config.app_name
        data: dict[str, Any] = {
            "title": title,
            "content": push.content,
            "__UUID__": uuid,
            "appid": self.config.appid,
        }
        if push.payload is not None:
            data["payload"] = localpush.click_payload(push.payload)
        if push.path is not None:
            data["path"] = push.path
        if push.channel_id != localpush.DEFAULT_CHANNEL:
            data["channelId"] = push.channel_id
        if push.category is not None:
            data["category"] = push.category
        return title, data

    def _show_local(
        self,
        push: localpush.LocalPush,
        scheduled: bool = False,
        entry: str | None = None,
        first_due: float | None = None,
        fired_at: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Show:
        key = self._new_id()
        title, data = self._local_data(push, entry or key)
        channel = self.channel(push.channel_id)
        notice = Notice(
            title=title,
            body=push.content,
            urgency=channel.urgency,
            icon=push.icon,
            sound="none" if push.sound == "none" else (channel.sound_name or "system"),
            cover=push.cover,
            category=push.category,
        )
        ticket = _Ticket(
            "local",
            data,
            channel=channel.channel_id,
            when=push.when,
            notice=notice,
            scheduled=scheduled,
            entry=entry,
            first_due=first_due,
            fired_at=fired_at,
            params=params,
        )
        return self._ticketed(ticket, notice, key)

    def _unshown(self, ticket: str, info: _Ticket, reason: str) -> list[Action]:
        """A delayed notification the server did not take when due: recorded in the
        history as not shown (with the reason) the first time, and tried again every
        UNSHOWN_RETRY_S until UNSHOWN_GRACE_S after it was due, so a server that comes
        back soon still shows it; after that it stays recorded as not shown."""
        assert info.notice is not None and info.first_due is not None
        actions: list[Action] = []
        entry = info.entry
        if entry is None:  # the first attempt
            entry = ticket
            self.counters["not_shown"] += 1
            shown = {**info.data, "when": info.when} if info.when is not None else info.data
            actions.append(
                Remember(
                    entry, "local", info.channel, info.notice.title, info.notice.body, shown, reason
                )
            )
        fired = info.fired_at if info.fired_at is not None else info.first_due
        retry_at = fired + UNSHOWN_RETRY_S
        if retry_at > info.first_due + UNSHOWN_GRACE_S:
            return [
                *actions,
                Warn("scheduled notification not shown; gave up", {"reason": reason}),
            ]
        assert info.params is not None
        params = {**info.params, RETRY_KEY: {"due": info.first_due, "entry": entry}}
        sched_id = self._new_id()
        self.scheduled[sched_id] = (params, retry_at)
        return [
            *actions,
            Warn(
                "scheduled notification not shown; trying again",
                {"reason": reason, "retry_in_s": UNSHOWN_RETRY_S},
            ),
            Schedule(sched_id, params, retry_at),
        ]

    # -- channels ------------------------------------------------------------------------

    def channel(self, channel_id: str) -> Channel:
        """An app's channel, or the default one for an id it never created."""
        return self.channels.get(channel_id, localpush.DEFAULT)

    def set_push_channel(self, params: dict[str, Any]) -> tuple[bool, list[Action]]:
        """A channel never changes once created: a second call with its id is a no-op."""
        channel = localpush.parse_channel(params)
        if channel.channel_id in self.channels:
            return False, []
        if len(self.channels) >= MAX_CHANNELS:
            # Channels are never deleted (as in uni): without a cap, one app could grow
            # the store and every getAllChannels answer without end.
            raise ApiFail(
                f"too many channels: at most {MAX_CHANNELS} per app, and channels are "
                "never deleted; reuse one of getAllChannels"
            )
        self.channels[channel.channel_id] = channel
        return True, [SaveChannel(channel)]

    def all_channels(self) -> list[Channel]:
        """The default channel first, then the others in creation order."""
        listed = list(self.channels.values())
        if localpush.DEFAULT_CHANNEL not in self.channels:
            listed.insert(0, localpush.DEFAULT)
        return listed

    # -- time --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``tick`` has a scheduled notification to show, or a held push whose
        ttl ends: wall-clock time, as both are kept on disk across restarts."""
        dues = [due for _, due in self.scheduled.values()]
        return min([*dues, *(until for _, until in self._hold_ends())], default=None)

    def _hold_ends(self) -> Iterator[tuple[str, float]]:
        """Each held push that carries the end of its sender's ttl, with that end."""
        for msg_id, entry in self.entries.items():
            if entry.state is State.HELD and entry.message.hold_until is not None:
                yield msg_id, entry.message.hold_until

    def _expire_held(self, now: float) -> list[Action]:
        """Held pushes whose sender's ttl ended: a phone's app that opens after it
        never gets them (Getui drops them), and the desktop's does not either."""
        gone = [msg_id for msg_id, until in self._hold_ends() if until <= now]
        if not gone:
            return []
        for msg_id in gone:
            entry = self.entries.pop(msg_id)
            entry.state = step(entry.state, Step.EXPIRED)
            self._wait_server.pop(msg_id, None)
        self.counters["missed"] += len(gone)
        return [
            self._persist([(msg_id, State.DONE) for msg_id in gone]),
            Warn("held pushes expired before an app listened", {"count": len(gone)}),
        ]

    def wall_clock_stepped(self, step: float) -> list[Action]:
        """The wall clock moved by ``step`` s while no real time passed: each scheduled
        notification keeps the moment it is due in real time, on disk too."""
        actions: list[Action] = []
        for sched_id, (params, due) in list(self.scheduled.items()):
            self.scheduled[sched_id] = (params, due + step)
            # One write moves the row: a delete and an insert were two commits, and a
            # kill or a full disk between them lost the notification.
            actions.append(Schedule(sched_id, params, due + step))
        return actions

    def summary_due(self) -> float | None:
        """When ``tick`` has a flood summary to show, on the flood's clock (the
        monotonic one ``recorded`` is given): a duration, never a date."""
        return None if self._summary is None else self._summary.due(self.flood.window)

    def tick(
        self, now: float, mono: float | None = None, local: float | None = None
    ) -> list[Action]:
        """``now``: wall-clock time, for scheduled notifications; ``mono``: the flood's
        clock, for its summary (``now`` when not given, as in tests of one clock);
        ``local``: seconds after local midnight, for quiet hours."""
        mono = now if mono is None else mono
        actions: list[Action] = [] if local is None else self.local_time(local)
        actions += self._expire_held(now)
        for sched_id, (params, due) in sorted(self.scheduled.items(), key=lambda kv: kv[1][1]):
            if due > now:
                continue
            del self.scheduled[sched_id]
            retry = params.get(RETRY_KEY)
            entry, first_due = None, due
            if isinstance(retry, dict):  # a retry: its first due time and history entry
                entry, first_due = str(retry["entry"]), float(retry["due"])
            try:
                if entry is not None and now > first_due + UNSHOWN_GRACE_S:
                    # A retry found after the grace (the daemon was down): too late.
                    actions.append(Warn("scheduled notification not shown; gave up"))
                else:
                    push = localpush.parse_local_push(params)
                    if self._held_back(self.channel(push.channel_id)):
                        actions += self._quiet_local(push, entry)
                    else:
                        actions.append(self._show_local(push, True, entry, first_due, now, params))
            except ApiFail as exc:
                actions.append(Warn("scheduled notification not shown", {"reason": str(exc)}))
            # After the show: a crash in between shows it again rather than never.
            actions.append(Unschedule(sched_id))
        summary = self._summary
        if summary is not None and summary.due(self.flood.window) <= mono:
            actions.append(self._flush_summary())
        return actions

    # -- quiet hours -------------------------------------------------------------------------

    def quiet_now(self, local: float) -> bool:
        """Whether it is quiet at ``local`` (seconds after local midnight)."""
        if self.quiet_override is not None:
            return self.quiet_override
        span = self.config.quiet_hours
        return span is not None and in_quiet_hours(span, local)

    def local_time(self, local: float) -> list[Action]:
        """The local time of day, whenever the driver looks at the clock: quiet hours
        begin or end. Level, not edge: after a clock step or a suspend the next look
        gives the right state. When quiet ends, one summary of what it held back."""
        quiet = self.quiet_now(local)
        if quiet == self.quiet:
            return []
        self.quiet = quiet
        return [] if quiet else self._quiet_summary()

    def _quiet_summary(self) -> list[Action]:
        """One notification for what quiet hours held back, if anything."""
        if not self.quiet_unread:
            return []
        count, self.quiet_unread = self.quiet_unread, 0
        notice = Notice(
            title=self.config.app_name,
            body=f"{count} notification{'s' if count > 1 else ''} arrived during quiet hours",
        )
        return [
            SaveQuiet(self.quiet_override, 0),
            self._ticketed(_Ticket("quiet", {"count": count}, notice=notice), notice),
        ]

    def set_quiet(self, on: bool | None, local: float) -> list[Action]:
        """The toggle (tray, CLI, local API): on, off, or None to follow the schedule.
        Kept on disk; it holds until changed again."""
        self.quiet_override = on
        return [SaveQuiet(on, self.quiet_unread), *self.local_time(local)]

    def quiet_edge(self, local: float) -> float | None:
        """Seconds until the schedule may change the quiet state (None: it cannot)."""
        span = self.config.quiet_hours
        if span is None or self.quiet_override is not None:
            return None
        return next_quiet_edge(span, local)

    def quiet_status(self) -> dict[str, Any]:
        span = self.config.quiet_hours
        mode = {None: "auto", True: "on", False: "off"}[self.quiet_override]
        return {
            "active": self.quiet,
            "mode": mode,
            "schedule": None
            if span is None
            else f"{span[0] // 60:02d}:{span[0] % 60:02d}-{span[1] // 60:02d}:{span[1] % 60:02d}",
            "breakthrough": self.config.quiet_breakthrough,
            "unread": self.quiet_unread,
        }

    def _held_back(self, channel: Channel) -> bool:
        if not self.quiet:
            return False
        breaks = channel.importance >= BREAKTHROUGH_IMPORTANCE
        return not (self.config.quiet_breakthrough and breaks)

    def _quiet_record(
        self,
        entry: str,
        source: Literal["push", "local"],
        channel: str | None,
        title: str,
        content: str,
        data: dict[str, Any],
        open_url: str | None = None,
    ) -> list[Action]:
        self.counters["quiet"] += 1
        self.quiet_unread += 1
        return [
            Remember(entry, source, channel, title, content, data, QUIET_REASON, open_url),
            SaveQuiet(self.quiet_override, self.quiet_unread),
        ]

    def _flush_summary(self) -> Show:
        """The summary of what the flood left unshown, now; the click acts on the latest."""
        assert self._summary is not None
        items, self._summary = self._summary.items, None
        latest = items[-1]
        more = f"{len(items)} more message{'s' if len(items) > 1 else ''}"
        last = latest.get("title") or latest.get("content") or ""
        notice = Notice(title=self.config.app_name, body=f"{more}: {last}" if last else more)
        return self._ticketed(_Ticket("summary", latest, notice=notice, items=tuple(items)), notice)

    # -- what status reports ---------------------------------------------------------------

    def count(self, *states: State) -> int:
        return sum(e.state in states for e in self.entries.values())

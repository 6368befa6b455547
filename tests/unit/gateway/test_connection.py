"""gateway/server.py's Connection: whatever interleaving of commits, hand-overs, store
reads and slow sends, each seq goes out once, in order, and none is left behind.

The sender mixes two sources (rows read back from the store, messages handed over
directly) and the cursor check in ``_push`` is what keeps them from sending a seq
twice; a property test drives random interleavings against a fake socket whose sends
may wait.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from unipush_bridge.gateway.server import Connection

APP, CID = "__UNI__T", "c" * 32


class Rows:
    """The store's side: committed rows for one cid."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    async def after_raw(self, appid: str, cid: str, seq: int, limit: int = 500) -> list[Any]:
        return [r for r in self.rows if r[0] > seq][:limit]


class SlowSocket:
    """Records frames; each send may give the loop away first, as a full buffer does."""

    def __init__(self, waits: list[bool]) -> None:
        self.closed = False
        self.seqs: list[int] = []
        self._waits = waits

    async def send_str(self, frame: str) -> None:
        self.seqs.append(json.loads(frame)["seq"])  # written before any wait, as aiohttp
        if self._waits and self._waits.pop():
            await asyncio.sleep(0)


def welcomed(conn: Connection) -> Connection:
    """As the hello's handler leaves it: the sender waits for the welcome."""
    conn.welcomed.set()
    return conn


async def settle(pending: list[asyncio.Task[None]], sock: SlowSocket) -> list[int]:
    """Let the senders finish, then what went out."""
    for _ in range(200):
        await asyncio.sleep(0)
    await asyncio.gather(*pending)
    return sock.seqs


async def drive(steps: list[str], waits: list[bool], backlog: int) -> list[int]:
    rows = Rows()
    for seq in range(1, backlog + 1):
        rows.rows.append((seq, f"m{seq}", "{}"))
    sock = SlowSocket(waits)
    conn = welcomed(Connection(sock, rows, APP, CID, 0))  # type: ignore[arg-type]
    conn.kick()  # registration
    pending: list[asyncio.Task[None]] = []
    seq = backlog
    for step in steps:
        if step == "commit":  # sendMessage: commit, then hand over as the gateway does
            seq += 1
            rows.rows.append((seq, f"m{seq}", "{}"))
            # before 0: SQLite's commits reach the connection in seq order
            pending.append(asyncio.ensure_future(conn.offer_now(0, seq, f"m{seq}", "{}")))
        elif step == "kick":
            conn.kick()
        else:
            await asyncio.sleep(0)
    return await settle(pending, sock)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.sampled_from(["commit", "kick", "yield"]), max_size=30),
    waits=st.lists(st.booleans(), max_size=40),
    backlog=st.integers(0, 3),
)
def test_each_seq_goes_out_once_in_order(steps: list[str], waits: list[bool], backlog: int) -> None:
    seqs = asyncio.run(drive(steps, waits, backlog))
    total = backlog + steps.count("commit")
    assert seqs == list(range(1, total + 1))


def test_a_kick_while_hand_overs_wait_sends_nothing_twice() -> None:
    """The case the property found easiest to break: rows queued for hand-over behind
    a slow send, and a store read (a kick) that sees them too."""
    seqs = asyncio.run(drive(["commit", "commit", "commit", "kick"], [True] * 10, 1))
    assert seqs == [1, 2, 3, 4]


class DeadSocket:
    closed = False

    async def send_str(self, frame: str) -> None:
        raise ConnectionResetError("Cannot write to closing transport")


def test_a_daemon_gone_mid_send_does_not_fail_the_send_message_call() -> None:
    """sendMessage hands a push straight to an idle connection; if the daemon died a
    moment ago, the HTTP call still succeeds and the row waits in the store."""

    async def run() -> None:
        rows = Rows()
        conn = welcomed(Connection(DeadSocket(), rows, APP, CID, 0))  # type: ignore[arg-type]
        conn.kick()
        await asyncio.sleep(0)
        rows.rows.append((1, "m1", "{}"))
        await conn.offer_now(0, 1, "m1", "{}")  # must not raise

    asyncio.run(run())


async def drive_cluster(steps: list[str], waits: list[bool], added: bool = True) -> list[int]:
    """Two nodes: "local" commits here (the Redis store's on_added check, then the
    hand-over, with the cid's seq before it); "remote" commits on another node, whose
    notice (with the cid's seq before it) arrives at a later "notice" step, or at the
    end. "held" commits here too, but its EXEC's answer is late: it comes at a later
    "answer" step (the newest held first), or at the end, so a later seq's delivery
    may be offered before an earlier one's. Without ``added`` the commit's check
    (cluster.py's _added) is left out: offer_now's ``before`` check alone keeps order."""
    rows = Rows()
    sock = SlowSocket(waits)
    conn = welcomed(Connection(sock, rows, APP, CID, 0))  # type: ignore[arg-type]
    conn.kick()
    notices: list[tuple[int, int]] = []
    held: list[tuple[int, int]] = []
    pending: list[asyncio.Task[None]] = []

    def answered(before: int, seq: int) -> None:
        if added and before > conn.last_sent:  # cluster.py's _added
            conn.resync()
        pending.append(asyncio.ensure_future(conn.offer_now(before, seq, f"m{seq}", "{}")))

    seq = 0
    for step in steps:
        if step in ("local", "remote", "held"):
            before, seq = seq, seq + 1
            rows.rows.append((seq, f"m{seq}", "{}"))
            if step == "remote":
                notices.append((before, seq))
            elif step == "held":
                held.append((before, seq))
            else:
                answered(before, seq)
        elif step == "notice" and notices:
            before, s = notices.pop(0)
            conn.offer_after(before, s, f"m{s}", "{}")
        elif step == "answer" and held:
            answered(*held.pop())
        else:
            await asyncio.sleep(0)
    for before, s in notices:
        conn.offer_after(before, s, f"m{s}", "{}")
    while held:
        answered(*held.pop())
    return await settle(pending, sock)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.sampled_from(["local", "remote", "notice", "yield"]), max_size=30),
    waits=st.lists(st.booleans(), max_size=40),
)
def test_notices_from_another_node_send_each_seq_once_in_order(
    steps: list[str], waits: list[bool]
) -> None:
    """A notice carries the message: handed over as it is when the one before it is
    sent or queued here, read from the store with the others when it is not."""
    seqs = asyncio.run(drive_cluster(steps, waits))
    total = steps.count("local") + steps.count("remote")
    assert seqs == list(range(1, total + 1))


def test_a_notice_after_a_gap_reads_the_store_instead() -> None:
    """Seq 2's notice arrives before seq 1's: 2 must not go out ahead of 1."""

    async def run() -> list[int]:
        rows = Rows()
        sock = SlowSocket([])
        conn = welcomed(Connection(sock, rows, APP, CID, 0))  # type: ignore[arg-type]
        conn.kick()
        await asyncio.sleep(0)
        rows.rows += [(1, "m1", "{}"), (2, "m2", "{}")]
        conn.offer_after(1, 2, "m2", "{}")  # seq 1 not sent: read both from the store
        conn.offer_after(0, 1, "m1", "{}")  # late: sent already, not again
        for _ in range(20):
            await asyncio.sleep(0)
        return sock.seqs

    assert asyncio.run(run()) == [1, 2]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.sampled_from(["local", "held", "answer", "remote", "notice", "yield"]), max_size=30
    ),
    waits=st.lists(st.booleans(), max_size=40),
    added=st.booleans(),
)
def test_commits_answered_out_of_order_send_each_seq_once_in_order(
    steps: list[str], waits: list[bool], added: bool
) -> None:
    """On Redis two requests' EXECs may answer out of seq order: a delivery whose
    ``before`` is not sent yet is read from the store with it, never sent ahead of it."""
    seqs = asyncio.run(drive_cluster(steps, waits, added))
    total = steps.count("local") + steps.count("held") + steps.count("remote")
    assert seqs == list(range(1, total + 1))


def test_a_later_commit_answered_first_waits_for_the_earlier_seq() -> None:
    """Seqs 1 and 2 are committed by two requests on Redis, and seq 2's EXEC answers
    first: its delivery (before = 1) is offered while 1 is not sent. offer_now must not
    send 2 at once (1, offered after it, would then be below the cursor and lost): the
    store is read instead, and 1's late delivery sends nothing again."""

    async def run() -> tuple[list[int], list[int]]:
        rows = Rows()
        sock = SlowSocket([])
        conn = welcomed(Connection(sock, rows, APP, CID, 0))  # type: ignore[arg-type]
        conn.kick()
        await asyncio.sleep(0)  # registered: the backlog (none) is read, idle and in sync
        rows.rows += [(1, "m1", "{}"), (2, "m2", "{}")]  # both EXECs applied
        await conn.offer_now(1, 2, "m2", "{}")  # seq 2's answer, first
        early = list(sock.seqs)
        await conn.offer_now(0, 1, "m1", "{}")  # seq 1's answer, late
        for _ in range(20):
            await asyncio.sleep(0)
        return early, sock.seqs

    early, seqs = asyncio.run(run())
    assert early == []  # 2 did not go out ahead of 1
    assert seqs == [1, 2]

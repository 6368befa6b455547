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

    def after_raw(self, appid: str, cid: str, seq: int, limit: int = 500) -> list[Any]:
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
    conn = Connection(sock, rows, APP, CID, 0)  # type: ignore[arg-type]
    conn.kick()  # registration
    pending: list[asyncio.Task[None]] = []
    seq = backlog
    for step in steps:
        if step == "commit":  # sendMessage: commit, then hand over as the gateway does
            seq += 1
            rows.rows.append((seq, f"m{seq}", "{}"))
            pending.append(asyncio.ensure_future(conn.offer_now(seq, f"m{seq}", "{}")))
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
        conn = Connection(DeadSocket(), rows, APP, CID, 0)  # type: ignore[arg-type]
        conn.kick()
        await asyncio.sleep(0)
        rows.rows.append((1, "m1", "{}"))
        await conn.offer_now(1, "m1", "{}")  # must not raise

    asyncio.run(run())


async def drive_cluster(steps: list[str], waits: list[bool]) -> list[int]:
    """Two nodes: "local" commits here (the Redis store's on_added check, then the
    hand-over); "remote" commits on another node, whose notice (with the cid's seq
    before it) arrives at a later "notice" step, or at the end."""
    rows = Rows()
    sock = SlowSocket(waits)
    conn = Connection(sock, rows, APP, CID, 0)  # type: ignore[arg-type]
    conn.kick()
    notices: list[tuple[int, int]] = []
    pending: list[asyncio.Task[None]] = []
    seq = 0
    for step in steps:
        if step in ("local", "remote"):
            before, seq = seq, seq + 1
            rows.rows.append((seq, f"m{seq}", "{}"))
            if step == "remote":
                notices.append((before, seq))
                continue
            if before > conn.last_sent:  # cluster.py's _added
                conn.resync()
            pending.append(asyncio.ensure_future(conn.offer_now(seq, f"m{seq}", "{}")))
        elif step == "notice" and notices:
            before, s = notices.pop(0)
            conn.offer_after(before, s, f"m{s}", "{}")
        else:
            await asyncio.sleep(0)
    for before, s in notices:
        conn.offer_after(before, s, f"m{s}", "{}")
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
        conn = Connection(sock, rows, APP, CID, 0)  # type: ignore[arg-type]
        conn.kick()
        await asyncio.sleep(0)
        rows.rows += [(1, "m1", "{}"), (2, "m2", "{}")]
        conn.offer_after(1, 2, "m2", "{}")  # seq 1 not sent: read both from the store
        conn.offer_after(0, 1, "m1", "{}")  # late: sent already, not again
        for _ in range(20):
            await asyncio.sleep(0)
        return sock.seqs

    assert asyncio.run(run()) == [1, 2]

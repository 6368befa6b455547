"""DurableAcks: one fsync in flight, and every committed seq acknowledged in the end.

A batch committed in the loop turn after the ack task's last step, but before the
task's done callback ran, found the finished task still set and started none: its ack
never left until the next batch (the fault test with a flooding gateway saw the
gateway's cursor stop 13 short of the last push, under load)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from unipush_bridge.runtime.link import DurableAcks
from unipush_bridge.runtime.session import ClientSession


class Ws:
    """Records the acks; ``after_send`` runs once, right after the first ack's send."""

    def __init__(self) -> None:
        self.acks: list[int] = []
        self.after_send: Any = None

    async def send(self, text: str) -> None:
        self.acks.append(json.loads(text)["seq"])
        if self.after_send is not None:
            # Queued before the task's last step ends: it runs after that step and
            # before the done callbacks the task's end schedules.
            asyncio.get_running_loop().call_soon(self.after_send)
            self.after_send = None


async def durable() -> None:
    return None


def make() -> tuple[DurableAcks, Ws]:
    ws = Ws()
    session = ClientSession("__UNI__X", "0" * 32, 0)
    acks = DurableAcks(cast(Any, ws), session, durable, lambda why: None)
    return acks, ws


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_batch_committed_as_the_ack_task_ends_is_acknowledged() -> None:
    acks, ws = make()
    ws.after_send = lambda: acks.recorded(2)
    acks.recorded(1)
    await settle()
    await acks.drain()
    assert ws.acks == [1, 2]


async def test_batches_committed_during_an_fsync_share_one_ack() -> None:
    acks, ws = make()
    acks.recorded(1)
    acks.recorded(2)
    acks.recorded(3)
    await settle()
    assert ws.acks == [3]
    acks.recorded(5)
    await settle()
    await acks.drain()
    assert ws.acks == [3, 5]

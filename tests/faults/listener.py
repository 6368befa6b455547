"""A listener process that outlives daemons: reconnects, re-subscribes, dedupes across runs.

Run as ``python tests/faults/listener.py SOCKET`` (no ``tests`` import, so any working
directory works). One ``PushClient`` serves every daemon run: its id-dedupe (which
drops a push a restarted daemon hands on again) lives in the instance, so a new
instance per run would forget what the last run delivered. ``connect()`` subscribes
a reconnected client again by itself (it keeps its callbacks), so the first
``on_push_message(cb)`` is the only one ever needed.

Prints one JSON line per event to stdout:
- ``{"subscribed": k}`` each time the k-th daemon connection is subscribed;
- ``{"type", "payload", "keys"}`` for each event handed to the callback (``keys``:
  the fields of its ``data``);
- ``{"suppressed": id}`` for each event the client dropped as already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from unipush_bridge.clients import PushClient

#: The longest a listener lives, so a forgotten one cannot linger.
MAX_LIFETIME_S = 600.0


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class CountingClient(PushClient):
    """Reports each push the client's id-dedupe drops (no public hook exists for it)."""

    def _first_time(self, msg_id: str | None) -> bool:
        first = super()._first_time(msg_id)
        if not first:
            emit({"suppressed": msg_id})
        return first


def on_event(event: dict[str, Any]) -> None:
    data = event.get("data", {})
    emit({"type": event.get("type"), "payload": data.get("payload"), "keys": sorted(data)})


async def main(socket_path: str) -> None:
    client = CountingClient(socket_path)
    deadline = time.monotonic() + MAX_LIFETIME_S
    runs = 0
    while time.monotonic() < deadline:
        try:
            await client.connect()
        except (ConnectionError, OSError):
            await asyncio.sleep(0.02)
            continue
        try:
            await client.on_push_message(on_event)  # a no-op after the first run
            runs += 1
            emit({"subscribed": runs})
            await client.wait_closed()
        except Exception:  # the daemon died mid-call: connect again
            await asyncio.sleep(0.02)
        finally:
            with contextlib.suppress(Exception):
                await client.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1]))

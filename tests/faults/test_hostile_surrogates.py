"""A gateway that sends text which is not Unicode: JSON's ``\\ud83d`` escape with no
partner (a JavaScript server that cut a title with ``slice()`` in the middle of an
emoji makes one). Python's json reads it as a lone surrogate, which SQLite cannot
store: the record of the whole batch used to fail, the link dropped ("internal error:
UnicodeEncodeError"), and on every reconnect the gateway sent the same batch again,
so that push and every valid one after it were stuck for good.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from tests.faults.conftest import Cleanup
from tests.faults.harness import (
    NO_SERVER,
    ReconnectingListener,
    exactly_once,
    log_events,
    quick_status,
    start_daemon_fast,
)
from tests.faults.test_hostile_gateway import FakeGateway, push, welcome
from tests.procs import DaemonProc, wait_for


def lone(seq: int, n: int, **message: Any) -> str:
    """A push whose strings hold lone surrogates, written as JSON escapes."""
    body = {"title": "cut \ud83d", "content": "x\udc00y", "payload": {"n": n, "k\ud800": "v"}}
    body.update(message)
    frame = {"type": "push", "seq": seq, "id": secrets.token_hex(16), "message": body}
    return json.dumps(frame)  # ensure_ascii: the surrogates go out as \\udXXX escapes


def test_lone_surrogates_in_a_push_neither_drop_the_link_nor_stall_the_rest(
    tmp_path: Path, cleanup: Cleanup
) -> None:
    frames = [push(1, 0), lone(2, 1), push(3, 2), lone(4, 3, sound="\udfff"), push(5, 4)]
    gw = FakeGateway([[welcome(), *frames], [welcome(acked=0), *frames]]).start()
    cleanup.add(gw.close)
    daemon = DaemonProc(tmp_path / "daemon", f"ws://127.0.0.1:{gw.port}", env=NO_SERVER)
    cleanup.proc(daemon)
    start_daemon_fast(daemon)
    # No listener yet: every push is recorded and held for the next one.
    wait_for(lambda: 5 in gw.acks(0), 10, "the ack of seq 5")
    listener = ReconnectingListener(daemon.socket, tmp_path / "listener.out").start()
    cleanup.add(listener.stop)
    numbers = listener.wait_numbers({0, 1, 2, 3, 4}, timeout=15)
    exactly_once(numbers, {0, 1, 2, 3, 4})
    assert daemon.alive()
    assert len(gw.hellos) == 1, "a push with a lone surrogate made the link drop"
    st = quick_status(daemon)
    assert st is not None and st["connection"]["state"] == "connected", st
    assert st["connection"]["last_error"] is None, st["connection"]
    assert not log_events(daemon, "unexpected error on the gateway link")

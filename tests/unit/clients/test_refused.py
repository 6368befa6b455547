"""A daemon past its connection cap writes one line saying why and closes, without
reading. If the client's request was not written by then, the write fails (EPIPE or
ECONNRESET) while the reason waits in the client's receive buffer. CI once printed
"closed the connection: [Errno 32] Broken pipe" where the reason belonged. The daemon now
shuts only its own side (tests/integration/test_local_api_flood.py); the one-shot client
also reads the buffer after a failed write, for a daemon that closes outright. (asyncio
drops what is buffered once a write fails, so PushClient relies on the daemon.) A
request far larger than the socket buffer makes the failed write certain, not a race."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.clients.fakedaemon import short_socket_path
from unipush_bridge.clients.push import PushClient
from unipush_bridge.errors import DaemonUnavailable
from unipush_bridge.localcall import DaemonCall
from unipush_bridge.wire.local import Answer, encode_answer, fail

REASON = "too many local API connections (at most 8)"
REFUSAL = fail("request", REASON)
BIG = {"title": "x" * (4 << 20)}  # well past any AF_UNIX send buffer


class Refuser:
    """Accepts, writes the refusal, closes. ``say=False`` closes without a word."""

    def __init__(self, path: Path, say: bool = True) -> None:
        self.path = path
        self.say = say
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if self.say:
                conn.sendall(encode_answer(Answer(None, REFUSAL)))
            conn.close()

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def refuser() -> Iterator[Refuser]:
    path = short_socket_path()
    os.chmod(path.parent, 0o700)
    r = Refuser(path)
    yield r
    r.close()


def test_a_one_shot_call_reports_the_refusal_not_a_broken_pipe(refuser: Refuser) -> None:
    result = DaemonCall(refuser.path, timeout=10)("createPushMessage", BIG)
    assert result == REFUSAL


def test_a_one_shot_call_to_a_silent_close_still_says_it_closed(refuser: Refuser) -> None:
    refuser.say = False
    with pytest.raises(DaemonUnavailable, match="closed the connection"):
        DaemonCall(refuser.path, timeout=10)("createPushMessage", BIG)


async def test_the_async_client_to_a_silent_close_says_it_closed(refuser: Refuser) -> None:
    refuser.say = False
    client = PushClient(refuser.path)
    try:
        with pytest.raises(DaemonUnavailable, match="closed the connection"):
            await client.create_push_message(**BIG)
    finally:
        await client.close()

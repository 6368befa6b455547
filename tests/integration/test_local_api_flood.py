"""What many local clients at once can make a real daemon process hold: each socket
connection may have up to 4 MiB of output waiting, so the number of connections is
capped (``max_local_connections``); a client past it is told why, in one line, and the
CLI and the Python client say so instead of "closed the connection"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import NO_SERVER
from tests.integration.test_local_api_clients import Line
from tests.procs import DaemonProc, cli, wait_for
from unipush_bridge.clients import PushClient
from unipush_bridge.errors import DaemonUnavailable

CAP = 8
REFUSAL = (
    f"request:fail too many local API connections (at most {CAP}, the max_local_connections "
    "setting); close other clients of this daemon"
)


def status_code(proc: DaemonProc) -> tuple[int, str]:
    res = cli("status", "--socket", str(proc.socket))
    return res.returncode, res.stderr


def test_past_the_cap_a_client_gets_one_line_saying_why(tmp_path: Path) -> None:
    """CAP listeners that subscribe and never read again hold every slot. Before, the
    daemon took any number of such connections (each good for 4 MiB unread): the next
    one was accepted and got nothing. Now it reads the refusal, then EOF; the CLI
    prints the reason; the daemon logs it; a slot that frees is taken again."""
    proc = DaemonProc(
        tmp_path / "d", None, env={**NO_SERVER, "UNIPUSH_BRIDGE_MAX_LOCAL_CONNECTIONS": str(CAP)}
    )
    proc.start()
    held: list[Line] = []
    try:
        for _ in range(CAP):
            line = Line(proc.socket)
            line.send(1, "onPushMessage")
            assert line.answer(1)["errMsg"] == "onPushMessage:ok"
            held.append(line)
        extra = Line(proc.socket)
        assert extra.next(timeout=5) == {"id": None, "result": {"errMsg": REFUSAL}}
        assert extra.next(timeout=5) is None  # and closed
        # Only the daemon's side is shut: a client that writes after the refusal came
        # (as `status` may, racing the daemon) gets no EPIPE; it once did, and the CLI
        # printed "Broken pipe" instead of the reason.
        extra.send(2, "getPushClientId")
        extra.close()

        code, err = status_code(proc)
        assert code == 1 and REFUSAL in err, err

        async def listen() -> None:
            async with PushClient(proc.socket) as client:
                await client.get_push_client_id()

        with pytest.raises(DaemonUnavailable, match="refused: request:fail too many local API"):
            asyncio.run(listen())

        held.pop().close()
        wait_for(lambda: status_code(proc)[0] == 0, 10, "the freed slot to be taken")
        logged = [e for e in proc.logs() if e.get("event", "").startswith("refused local API")]
        assert logged and logged[0]["max_connections"] == CAP, logged
    finally:
        for line in held:
            line.close()
        proc.kill()

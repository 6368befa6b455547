"""Large notifications in the history. ``content`` may be as long as a request line
allows (1 MiB), and a history entry holds it twice (``content`` and the click's
``data``): a few such entries among the newest made the ``history`` answer longer
than the 1 MiB every line of the local API is held to, so every client dropped it
("a line from the daemon is over 1048576 bytes"): ``unipush-bridge history`` failed
and the tray's menu of recent notifications with it, until enough small ones came.
Now the answer holds what fits, newest first, and says how many it left out.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.harness import NO_SERVER, api_call
from tests.procs import DaemonProc, Proc, cli
from unipush_bridge.clients import SyncPushClient


def test_history_with_entries_too_big_for_one_line_answers_what_fits(
    tmp_path: Path, procs: list[Proc]
) -> None:
    daemon = DaemonProc(tmp_path / "daemon", None, env=NO_SERVER).start()
    procs.append(daemon)
    client = SyncPushClient(str(daemon.socket))
    try:
        client.set_quiet_hours(True)  # recorded in the history, with no server to show them
        client.create_push_message(content="small, first", payload={"n": 0})
        for n in (1, 2, 3):
            client.create_push_message(content=f"{n}" * 300_000, payload={"n": n})
        client.create_push_message(content="x" * 700_000, payload={"n": 4})  # alone > 1 MiB
        client.create_push_message(content="small, last", payload={"n": 5})
        entries = client.history(limit=10)
        # Newest first, each whole; one that does not fit in what is left is left out.
        assert [e["data"]["payload"]["n"] for e in entries] == [5, 3, 0]
        assert entries[1]["content"] == "3" * 300_000
        assert client.history(limit=1)[0]["content"] == "small, last"
    finally:
        client.close()
    answer = api_call(daemon.socket, "history")
    assert answer["errMsg"] == "history:ok", answer["errMsg"]
    assert answer["left_out"] == 3
    listed = cli("history", "--socket", str(daemon.socket))
    assert listed.returncode == 0, listed.stderr
    assert "small, last" in listed.stdout and "small, first" in listed.stdout

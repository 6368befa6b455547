"""Without a notification server the daemon says so once per outage, and once when a
server is back (issue 12 item 10; issue 11 items 5 and 6): a real daemon, a private bus
whose dunst is stopped, started again and stopped again while pushes arrive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifstack import NotifStack, require_tools
from tests.procs import DaemonProc, Listener, cli, post_json, wait_for, wait_listeners

NO_SERVER = "no notification server; notifications are off, receive events still flow"


@pytest.fixture
def stack() -> Iterator[NotifStack]:
    """A stack of its own: this test stops and starts its dunst."""
    require_tools()
    with NotifStack() as stack:
        yield stack


def _push(daemon: DaemonProc, title: str) -> None:
    http = "http" + daemon.status()["gateway"].removeprefix("ws").split("/ws")[0]
    status, answer = post_json(
        f"{http}/api/__UNI__DESKTOP/sendMessage",
        {"push_clientid": daemon.cid(), "title": title, "content": "c", "payload": {}},
    )
    assert status == 200, answer


def _outage(stack: NotifStack, daemon: DaemonProc) -> None:
    """dunst goes away, and the daemon has seen it go."""
    stack.stop_server()
    wait_for(lambda: daemon.status()["notifications"] == "unavailable", 5, "the outage")


def _said(daemon: DaemonProc, event: str) -> int:
    return sum(1 for line in daemon.logs() if line.get("event") == event)


def _received(daemon: DaemonProc, n: int) -> None:
    wait_for(lambda: daemon.status()["counters"].get("received", 0) >= n, 10, f"{n} pushes")


def test_no_server_is_said_once_per_outage_and_once_when_back(
    tmp_path: Path, stack: NotifStack
) -> None:
    """issue 12 item 10: once per outage, and again when a server returns; issue 11
    item 5: the probe really asks (a server that went is noticed, one that came is
    found without waiting for the back-off); item 6: one line each, no traceback."""
    stack.stop_server()
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_FLOOD_THRESHOLD": "0"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        assert daemon.status()["notifications"] == "unavailable"
        for i in range(3):
            _push(daemon, f"dark {i}")
        _received(daemon, 3)
        wait_for(lambda: daemon.status()["held_for_listener"] == 3, 10, "3 held pushes")

        stack.start_server()  # found at once: the daemon watches the name's owner
        wait_for(lambda: daemon.status()["notifications"] == "available", 5, "the server")
        _push(daemon, "lit")
        wait_for(stack.seen, 5, "the push on dunst")

        _outage(stack, daemon)
        for i in range(3):
            _push(daemon, f"dark again {i}")
        _received(daemon, 7)

        warnings = [line for line in daemon.logs() if line.get("level") == "warning"]
        assert [w["event"] for w in warnings] == [NO_SERVER, NO_SERVER], warnings
        assert _said(daemon, "notification server found") == 1
        text = daemon.log_path.read_text()
        assert "Traceback" not in text and '"exception"' not in text
        assert "refused" not in text
    finally:
        daemon.stop()


def test_pushes_that_came_while_dunst_was_gone_are_shown_when_it_is_back(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst stopped a moment (restarted, crashed): the pushes that came meanwhile with
    no app listening are shown once it is back, not kept for an app that may never
    come; the restarted dunst is found by its name on the bus, without a new push."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        assert daemon.status()["notifications"] == "available"
        _outage(stack, daemon)
        for i in range(3):
            _push(daemon, f"dark {i}")
        wait_for(lambda: daemon.status()["held_for_listener"] == 3, 10, "3 held pushes")
        stack.start_server()
        wait_for(lambda: len(stack.seen()) == 3, 10, "the held pushes on dunst")
        assert sorted(n["summary"] for n in stack.seen()) == ["dark 0", "dark 1", "dark 2"]
        assert daemon.status()["held_for_listener"] == 0
    finally:
        daemon.stop()


def test_a_short_outage_as_big_as_the_flood_threshold_is_shown_not_summed_up(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst gone for a moment while as many pushes came as the flood lets through: once
    it is back the three are shown, as they would have been when they came. The shows
    that failed took no place in the flood's window (they were summed up into "3 more
    messages", and kept held, when the server came back within the window)."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_FLOOD_THRESHOLD": "3"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        _outage(stack, daemon)
        for i in range(3):
            _push(daemon, f"dark {i}")
        wait_for(lambda: daemon.status()["held_for_listener"] == 3, 10, "3 held pushes")
        stack.start_server()
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 10, "the held pushes shown")
        wait_for(lambda: len(stack.seen()) == 3, 5, "three notifications on dunst")
        assert sorted(n["summary"] for n in stack.seen()) == ["dark 0", "dark 1", "dark 2"]
        assert daemon.status()["counters"]["coalesced"] == 0
    finally:
        daemon.stop()


def test_pushes_held_while_dunst_hung_are_shown_once_it_answers_again(
    tmp_path: Path, stack: NotifStack
) -> None:
    """A server that hangs (SIGSTOP: it keeps its name on the bus, so no NameOwnerChanged
    says it is back) and then answers again: the pushes held while it did not answer are
    shown within the notifier's 30 s re-probe, without waiting for a new notification
    to find out that the server is back."""
    env = {
        **stack.env,
        "UNIPUSH_BRIDGE_SLEEP_BUS": "off",
        "UNIPUSH_BRIDGE_NOTIFY_TIMEOUT": "1",
    }
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        assert daemon.status()["notifications"] == "available"
        os.kill(stack.server_pid, signal.SIGSTOP)
        try:
            _push(daemon, "hung 0")  # times out: the server counts as gone
            wait_for(lambda: daemon.status()["notifications"] == "unavailable", 10, "the hang")
            for i in (1, 2):
                _push(daemon, f"hung {i}")
            wait_for(lambda: daemon.status()["held_for_listener"] == 3, 10, "3 held pushes")
        finally:
            os.kill(stack.server_pid, signal.SIGCONT)
        wait_for(lambda: daemon.status()["notifications"] == "available", 40, "the server back")
        wait_for(
            lambda: {"hung 1", "hung 2"} <= {n["summary"] for n in stack.seen()},
            10,
            "the pushes held while it hung, on dunst",
        )
    finally:
        daemon.stop()


def test_the_quiet_hours_summary_waits_for_a_server_that_is_gone(
    tmp_path: Path, stack: NotifStack
) -> None:
    """Quiet hours end while no server is there (a login where the daemon starts
    before the desktop's notification server, dunst restarting): the summary of what
    quiet held back is shown once a server is back, not dropped with its count."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    sock = ["--socket", str(daemon.socket)]
    try:
        assert cli("quiet", "on", *sock).returncode == 0
        for i in range(2):
            _push(daemon, f"quiet {i}")
        wait_for(lambda: daemon.status()["quiet"]["unread"] == 2, 10, "two held back")
        _outage(stack, daemon)
        assert cli("quiet", "off", *sock).returncode == 0
        stack.start_server()
        wait_for(lambda: daemon.status()["notifications"] == "available", 5, "the server")
        (summary,) = wait_for(stack.seen, 5, "the quiet hours summary on dunst")
        assert summary["body"] == "2 notifications arrived during quiet hours"
    finally:
        daemon.stop()


#: A listener that subscribes with acks, prints each event line it gets and never
#: acknowledges one (an app killed before its callback returned).
NO_ACK_LISTENER = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(b'{"id": 1, "method": "onPushMessage", "params": {"ack": true}}\\n')
for line in sock.makefile("rb"):
    sys.stdout.write(line.decode())
    sys.stdout.flush()
"""


def _no_ack_listener(daemon: DaemonProc) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", NO_ACK_LISTENER, str(daemon.socket)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _killed_before_acking(daemon: DaemonProc, title: str) -> None:
    """A listener gets the held push ``title`` and is SIGKILLed before it acknowledges it."""
    listener = _no_ack_listener(daemon)
    try:
        assert listener.stdout is not None
        for line in listener.stdout:
            if json.loads(line).get("event") == "push":
                assert json.loads(line)["data"]["data"]["title"] == title
                break
    finally:
        listener.kill()
        listener.wait()
    wait_for(lambda: daemon.status()["listeners"] == 0, 10, "the listener gone")
    wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "the push held again")


def test_a_push_held_for_want_of_a_server_is_shown_when_a_listener_died_with_it(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst gone, one push held for want of it; a listener subscribes, gets it, and is
    killed before it acknowledges it (so no app ever had it). Once dunst is back the
    push is shown, as when no listener had come: it used to stay held for the next
    listener, because the subscribe had dropped it from what waits for a server."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        _outage(stack, daemon)
        _push(daemon, "dark")
        wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "the held push")
        _killed_before_acking(daemon, "dark")
        stack.start_server()
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["dark"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 5, "nothing held")
    finally:
        daemon.stop()


def test_a_listener_that_dies_after_the_server_came_back_leaves_the_push_to_it(
    tmp_path: Path, stack: NotifStack
) -> None:
    """The same, but dunst is back while the listener still has the push unacknowledged:
    the listener dies, and the push, which no app ever had, is shown at once."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        _outage(stack, daemon)
        _push(daemon, "dark")
        wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "the held push")
        listener = _no_ack_listener(daemon)
        try:
            assert listener.stdout is not None
            assert "dark" in listener.stdout.readline() + listener.stdout.readline()
            stack.start_server()
            wait_for(lambda: daemon.status()["notifications"] == "available", 5, "the server")
        finally:
            listener.kill()
            listener.wait()
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["dark"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 5, "nothing held")
    finally:
        daemon.stop()


def test_a_push_whose_show_timed_out_on_a_hung_server_is_delivered_once(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst hangs (SIGSTOP) while a push is shown: the Notify call times out after
    notify_timeout, but it is in dunst's queue, and dunst shows it once it runs again
    (SIGCONT). That late answer counts: the push is done, not held for the next
    listener too (it used to reach the screen and, later, a listener: twice)."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_NOTIFY_TIMEOUT": "1"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    listener = Listener(daemon.socket, tmp_path / "listener.log", env=env)
    try:
        os.kill(stack.server_pid, signal.SIGSTOP)
        try:
            _push(daemon, "hung")
            wait_for(lambda: daemon.status()["notifications"] == "unavailable", 10, "the hang")
        finally:
            os.kill(stack.server_pid, signal.SIGCONT)
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["hung"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 10, "nothing held")
        listener.start()
        wait_listeners(daemon, 1)
        _push(daemon, "after")
        events = listener.wait_events(1)
        assert [e["data"]["title"] for e in events] == ["after"], events
        status = daemon.status()
        assert status["counters"]["notified"] == 1 and status["backlog"] == 0
        (entry,) = [h for h in daemon_history(daemon) if h["title"] == "hung"]
        assert entry.get("not_shown") is None, entry
    finally:
        listener.stop()
        daemon.stop()


def test_a_timed_out_show_a_listener_took_meanwhile_is_closed_when_dunst_shows_it(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst hangs while a push is shown; a listener takes the push meanwhile. When
    dunst runs again it shows the queued notification: the daemon closes it, so the
    push reaches the user once (as the listener's receive), not twice."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_NOTIFY_TIMEOUT": "1"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    listener = Listener(daemon.socket, tmp_path / "listener.log", env=env)
    try:
        os.kill(stack.server_pid, signal.SIGSTOP)
        try:
            _push(daemon, "hung")
            wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "it held")
            listener.start()
            (event,) = listener.wait_events(1)
            assert event["data"]["title"] == "hung"
            wait_for(lambda: daemon.status()["backlog"] == 0, 10, "it acknowledged")
        finally:
            os.kill(stack.server_pid, signal.SIGCONT)
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["hung"], 10, "it on dunst")
        stack.wait_displayed(0)
        assert daemon.status()["counters"]["notified"] == 0
    finally:
        listener.stop()
        daemon.stop()


def test_a_push_whose_show_hung_until_dunst_was_killed_is_shown_by_the_next_dunst(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst hangs while a push is shown and is killed without ever answering: the
    push was never on the screen, so it waits for a server as one held for want of
    one, and the next dunst shows it."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_NOTIFY_TIMEOUT": "1"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        os.kill(stack.server_pid, signal.SIGSTOP)
        _push(daemon, "hung")
        wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "it held")
        os.kill(stack.server_pid, signal.SIGKILL)
        stack.stop_server()
        stack.start_server()
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["hung"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 5, "nothing held")
    finally:
        daemon.stop()


def daemon_history(daemon: DaemonProc) -> list[dict[str, Any]]:
    res = cli("history", "--json", "--socket", str(daemon.socket))
    assert res.returncode == 0, res.stderr
    data: list[dict[str, Any]] = json.loads(res.stdout)
    return data


def _push_body(daemon: DaemonProc, body: dict[str, Any]) -> None:
    http = "http" + daemon.status()["gateway"].removeprefix("ws").split("/ws")[0]
    status, answer = post_json(
        f"{http}/api/__UNI__DESKTOP/sendMessage", {"push_clientid": daemon.cid(), **body}
    )
    assert status == 200, answer


def _restart(daemon: DaemonProc, sig: signal.Signals) -> None:
    """Stop the daemon by ``sig`` and start it again on the same state dir (a SIGKILL
    leaves its socket file behind: gone first, so start waits for the new one)."""
    daemon.stop(sig)
    daemon.socket.unlink(missing_ok=True)
    daemon.start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_push_held_for_want_of_a_server_is_shown_after_a_daemon_restart(
    tmp_path: Path, stack: NotifStack, sig: signal.Signals
) -> None:
    """The daemon started at login before the desktop's notification server (or was
    restarted during an outage): the push held only for want of a server is shown
    once a server is there after the restart, exactly once, and never also handed to
    the next listener; one held on purpose (strategy 3: no phone maker's channel)
    still waits for a listener. Both used to wait for the next listener."""
    stack.stop_server()
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    listener = Listener(daemon.socket, tmp_path / "listener.log", env=env)
    try:
        assert daemon.status()["notifications"] == "unavailable"
        _push(daemon, "dark")
        _push_body(
            daemon,
            {
                "title": "online",
                "content": "c",
                "payload": {},
                "settings": {"strategy": {"default": 3}},
            },
        )
        wait_for(lambda: daemon.status()["held_for_listener"] == 2, 10, "2 held pushes")
        _restart(daemon, sig)  # still no server: the push waits for one
        assert daemon.status()["notifications"] == "unavailable"
        assert daemon.status()["held_for_listener"] == 2
        stack.start_server()
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["dark"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 1, 5, "one held")

        _restart(daemon, sig)  # shown: a restart with the server there shows it no more
        listener.start()
        events = listener.wait_events(1)
        assert [e["data"]["title"] for e in events] == ["online"], events
        wait_for(lambda: daemon.status()["backlog"] == 0, 10, "nothing held")
        assert [n["summary"] for n in stack.seen()] == ["dark"]
        assert listener.events() == events
    finally:
        listener.stop()
        daemon.stop()


def test_a_push_held_for_want_of_a_server_is_shown_when_the_daemon_restarts_with_one(
    tmp_path: Path, stack: NotifStack
) -> None:
    """A push held while dunst was gone; the daemon is killed, dunst comes back, and
    the daemon starts again: the server is there from the start (no "found" event to
    wait for), and the push is shown at once."""
    stack.stop_server()
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        _push(daemon, "dark")
        wait_for(lambda: daemon.status()["held_for_listener"] == 1, 10, "the held push")
        daemon.stop(signal.SIGKILL)
        stack.start_server()
        daemon.socket.unlink(missing_ok=True)
        daemon.start()
        wait_for(lambda: [n["summary"] for n in stack.seen()] == ["dark"], 10, "it on dunst")
        wait_for(lambda: daemon.status()["held_for_listener"] == 0, 5, "nothing held")
    finally:
        daemon.stop()


def test_a_cover_right_after_a_show_answered_late_replaces_it(
    tmp_path: Path, stack: NotifStack
) -> None:
    """dunst hangs while a push is shown and shows it once it runs again (a late
    answer, counted as shown): a cover asked for right after replaces that
    notification, as uni's cover replaces the previous one; it used to stack a new
    one, since only a show answered in time recorded the id a cover replaces."""
    env = {**stack.env, "UNIPUSH_BRIDGE_SLEEP_BUS": "off", "UNIPUSH_BRIDGE_NOTIFY_TIMEOUT": "1"}
    daemon = DaemonProc(tmp_path / "daemon", None, env=env).start()
    try:
        os.kill(stack.server_pid, signal.SIGSTOP)
        try:
            _push(daemon, "hung")
            wait_for(lambda: daemon.status()["notifications"] == "unavailable", 10, "the hang")
        finally:
            os.kill(stack.server_pid, signal.SIGCONT)
        (first,) = wait_for(stack.seen, 10, "it on dunst")
        wait_for(lambda: daemon.status()["counters"]["notified"] == 1, 10, "shown late")
        wait_for(lambda: daemon.status()["notifications"] == "available", 10, "the server")
        res = cli("notify", "--socket", str(daemon.socket), "--content", "next", "--cover")
        assert res.returncode == 0, res.stderr
        seen = wait_for(lambda: s if len(s := stack.seen()) == 2 else None, 10, "the cover")
        assert [s["id"] for s in seen] == [first["id"]] * 2, seen
        assert stack.count_displayed() == 1
    finally:
        daemon.stop()

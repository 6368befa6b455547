"""The pytest plugin's fixtures used as a project would use them (issue 16 item 2)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from unipush_bridge.testing.plugin import Unipush
from unipush_bridge.testing.stack import DaemonProcess, InProcessListener


def test_sample_three_lines(unipush: Any) -> None:
    """issue 16 item 2: the docs/testing.md sample, word for word."""
    unipush.push(title="Order shipped", payload={"order": 42})
    unipush.click(unipush.notification(title="Order shipped"))
    assert unipush.wait_for_event("click")["data"]["payload"] == {"order": 42}


def test_listener_fixture_gets_receive_and_nothing_is_shown(
    unipush: Unipush, unipush_listener: InProcessListener
) -> None:
    """issue 16 item 2: with an app listening from the start a push is a receive."""
    unipush.push(title="t", content="c", payload={"n": 1})
    event = unipush_listener.wait_for_event("receive")
    assert event["data"]["payload"] == {"n": 1}
    assert unipush.notifications() == []


def test_hints_dismiss_and_the_daemon_fixture(
    unipush: Unipush, unipush_daemon: DaemonProcess
) -> None:
    """issue 16 item 2: hints are recorded; a dismissed notification is closed with
    reason 2 and its click never comes; the daemon fixture has the registered cid."""
    assert len(unipush_daemon.cid) == 32 and unipush.cid == unipush_daemon.cid
    unipush.push(title="Dismiss me", content="c", payload="p")
    note = unipush.notification(title="Dismiss me")
    assert note.hints.get("desktop-entry") or note.hints.get("urgency") is not None
    unipush.dismiss(note)
    assert unipush.notifications() == []
    (closed,) = unipush.server.all_notifications()  # type: ignore[attr-defined]
    assert closed.closed == 2
    assert unipush_daemon.status()["counters"]["clicks"] == 0


def test_importing_the_plugin_is_cheap() -> None:
    """issue 16 item 2: pytest loads the plugin in every run of a project that installed
    us, so importing it must not load asyncio, aiohttp, dbus-fast or the daemon."""
    code = (
        "import sys, json; before = set(sys.modules); import unipush_bridge.testing.plugin; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(res.stdout)
    heavy = [
        m for m in loaded if m.split(".")[0] in {"asyncio", "aiohttp", "dbus_fast", "pydantic"}
    ]
    assert heavy == [] and "unipush_bridge.runtime" not in loaded, loaded


def test_a_failing_test_leaves_no_process_behind(tmp_path: Path) -> None:
    """issue 16 item 2: fixtures clean up even when the test fails: its gateway, daemon
    and dbus-daemon are gone when pytest ends, and so is the zygote."""
    pids = tmp_path / "pids.json"
    (tmp_path / "test_fails.py").write_text(
        textwrap.dedent(
            f"""
            import json
            def test_fails(unipush):
                server = unipush.server
                json.dump([unipush.gateway.child.pid, unipush.daemon.child.pid,
                           server.bus.proc.pid], open({str(pids)!r}, "w"))
                assert False, "on purpose"
            """
        )
    )
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1 and "on purpose" in res.stdout, res.stdout + res.stderr
    for pid in json.loads(pids.read_text()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_stuck_daemon_is_killed_after_the_timeout(unipush_daemon: DaemonProcess) -> None:
    """issue 16 item 2: a child that does not stop on SIGTERM (here SIGSTOPped) is
    SIGKILLed once the stop timeout passes, so a teardown never hangs."""
    os.kill(unipush_daemon.child.pid, signal.SIGSTOP)
    start = time.monotonic()
    unipush_daemon.child.stop(timeout=0.3)
    assert not unipush_daemon.child.alive()
    assert time.monotonic() - start < 2


def test_a_killed_pytest_leaves_no_process_behind(tmp_path: Path) -> None:
    """issue 16 item 2: even a SIGKILLed pytest (no finalizer runs) leaves nothing: the
    zygote sees its stdin close and kills its children; dbus-daemon has PDEATHSIG."""
    pids = tmp_path / "pids.json"
    (tmp_path / "test_hangs.py").write_text(
        textwrap.dedent(
            f"""
            import json, time
            def test_hangs(unipush):
                json.dump([unipush.gateway.child.pid, unipush.daemon.child.pid,
                           unipush.server.bus.proc.pid], open({str(pids)!r}, "w"))
                time.sleep(60)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() or not pids.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the test did not start"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    left = json.loads(pids.read_text())
    deadline = time.monotonic() + 5
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if _exists(pid)]
        time.sleep(0.02)
    assert left == []


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dbus-daemon was the killed pytest's child) is gone for our purpose
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:4]
    return False

"""issue 12 item 8: what a refused start says about the daemon that runs: the
shortest flags that reach its socket, and how to stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unipush_bridge import paths
from unipush_bridge.errors import AlreadyRunning
from unipush_bridge.runtime import lock


@pytest.fixture(autouse=True)
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "rt"))


def test_the_default_socket_needs_no_flag() -> None:
    sock = str(paths.default_socket(paths.DEFAULT_APPID))
    text = lock.use_it("unipush-bridge", paths.DEFAULT_APPID, sock, 42)
    assert "`unipush-bridge status`" in text
    assert "`unipush-bridge listen --json`" in text
    assert "`kill 42`" in text or "systemctl --user stop" in text


def test_another_appid_and_another_socket_are_named() -> None:
    sock = str(paths.default_socket("__UNI__X"))
    assert "`p status --appid __UNI__X`" in lock.use_it("p", "__UNI__X", sock, 1)
    text = lock.use_it("/venv/bin/unipush-bridge", "__UNI__X", "/tmp/my dir/a.sock", 1)
    assert "`/venv/bin/unipush-bridge status --socket '/tmp/my dir/a.sock'`" in text


def test_a_process_outside_a_unit_is_killed_by_pid() -> None:
    """A daemon run by a systemd user unit would be started again by systemd after a
    kill; any other one is stopped by its pid."""
    assert lock.stop_command(2**22 + 12345) == f"kill {2**22 + 12345}"  # no such process


def test_the_refusal_leads_to_the_running_daemon(tmp_path: Path) -> None:
    first = lock.acquire(tmp_path, "__UNI__A")
    first.note(lock.Holder("__UNI__A", 4242, "/run/a.sock", 8787))
    with pytest.raises(AlreadyRunning) as info:
        lock.acquire(tmp_path, "__UNI__A", program="unipush-bridge")
    text = str(info.value)
    assert "`unipush-bridge status --socket /run/a.sock`" in text
    assert "`unipush-bridge listen --json --socket /run/a.sock`" in text
    assert "`kill 4242`" in text
    first.release()


def test_running_daemon_is_none_when_nothing_answers(tmp_path: Path) -> None:
    assert lock.running_daemon([tmp_path / "none.sock"]) is None

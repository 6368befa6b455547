"""lock.py: one daemon per appid and state dir, and who holds a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from unipush_bridge.errors import AlreadyRunning
from unipush_bridge.runtime import lock


def test_a_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = lock.acquire(tmp_path, "__UNI__A")
    first.note(lock.Holder("__UNI__A", os.getpid(), "/run/a.sock", 8787))
    with pytest.raises(AlreadyRunning) as info:
        lock.acquire(tmp_path, "__UNI__A")
    text = str(info.value)
    assert f"pid {os.getpid()}" in text and "/run/a.sock" in text and "__UNI__A" in text
    other = lock.acquire(tmp_path, "__UNI__B")  # another appid is another lock
    other.release()
    first.release()
    lock.acquire(tmp_path, "__UNI__A").release()  # free again once released


def test_the_lock_is_private(tmp_path: Path) -> None:
    held = lock.acquire(tmp_path, "__UNI__A")
    assert (lock.lock_path(tmp_path, "__UNI__A").stat().st_mode & 0o777) == 0o600
    held.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """flock goes with the process, however it dies: no stale lock blocks a restart."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from unipush_bridge.runtime import lock\n"
        "lock.acquire(Path(sys.argv[1]), '__UNI__A')\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    with pytest.raises(AlreadyRunning):
        lock.acquire(tmp_path, "__UNI__A")
    child.kill()
    child.wait()
    lock.acquire(tmp_path, "__UNI__A").release()


def test_holder_of_port_finds_only_live_holders(tmp_path: Path) -> None:
    held = lock.acquire(tmp_path, "__UNI__A")
    held.note(lock.Holder("__UNI__A", 123, "/run/a.sock", 8787))
    assert lock.holder_of_port(tmp_path, 8787) == lock.Holder("__UNI__A", 123, "/run/a.sock", 8787)
    assert lock.holder_of_port(tmp_path, 9999) is None
    held.release()
    assert lock.holder_of_port(tmp_path, 8787) is None  # the file is left, the lock is not

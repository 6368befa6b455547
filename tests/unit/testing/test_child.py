"""The plugin's Child on the real zygote: a child that is gone before the test side
opened its pidfd (the zygote ignores SIGCHLD, so the kernel reaps it at once)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from unipush_bridge.testing.stack import Child, wait_until


def test_a_child_gone_before_its_pidfd_is_opened_reads_as_exited(tmp_path: Path) -> None:
    """A gateway or daemon that fails at once (a bad option, a taken port), on a loaded
    machine where the test side runs a moment after the fork: pidfd_open found no such
    process and the fixture raised a bare ProcessLookupError instead of "the gateway
    exited" with its log. Made certain: another thread keeps the GIL for 0.5 s at a time,
    so the pid is read back long after the child exited."""
    log = tmp_path / "gateway.log"
    hold = threading.Event()

    def busy() -> None:
        while not hold.is_set():
            pass

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    thread = threading.Thread(target=busy)
    thread.start()
    try:
        child = Child(["gateway", "--port", "not-a-port"], log, dict(os.environ))
    finally:
        hold.set()
        sys.setswitchinterval(old)
        thread.join()
    try:
        wait_until(lambda: not child.alive(), 10, "the child to exit")
        with pytest.raises(RuntimeError, match="the gateway exited"):
            child.check_alive("the gateway")
        wait_until(lambda: "not-a-port" in log.read_text(), 10, "its usage error in the log")
    finally:
        child.stop()

"""Fixtures for the fault tests: everything a test starts is stopped when it ends."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import NO_SERVER
from tests.procs import GatewayProc, Proc


class Cleanup:
    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []

    def add(self, undo: Callable[[], object]) -> None:
        self._undo.append(undo)

    def proc(self, proc: Proc) -> Proc:
        self.add(lambda: proc.stop(signal.SIGKILL))
        return proc

    def run(self) -> None:
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup failed: {exc!r}")


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    c = Cleanup()
    yield c
    c.run()


@pytest.fixture
def gateway(tmp_path: Path, cleanup: Cleanup) -> GatewayProc:
    gw = GatewayProc(tmp_path / "gw", env=NO_SERVER)
    cleanup.proc(gw)
    return gw.start()

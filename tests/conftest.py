"""Suite-wide settings and fixtures: Hypothesis' example database out of the source
tree, and the processes a test starts killed when it ends, pass or fail."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import configuration

from tests.procs import Proc

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(
        Path(tempfile.gettempdir()) / f"unipush-bridge-hypothesis-{os.getuid()}"
    )


def pytest_configure(config: pytest.Config) -> None:
    """A short base for tmp_path. AF_UNIX holds 107 bytes, and sockets live under
    tmp_path (XDG_RUNTIME_DIR, state dirs): pytest's own base,
    /tmp/pytest-of-root/pytest-NNN/popen-gwN/, left some tests 111 bytes long, and it
    grows by a byte at each thousandth run on a machine. A new one per run (workers take
    their popen-gwN below it), so runs side by side never clear each other's."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="upt-")
        config.stash[_OWN_BASETEMP] = Path(config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The base made above goes with a run that passed (a failed run's is kept, to look
    at; pytest names it in the failures)."""
    base = config.stash.get(_OWN_BASETEMP, None)
    if base is not None and config.stash.get(_PASSED, False):
        shutil.rmtree(base, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_PASSED] = exitstatus == 0


_OWN_BASETEMP = pytest.StashKey[Path]()
_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Append every process you start; they are SIGKILLed in reverse order at the end."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(signal.SIGKILL)

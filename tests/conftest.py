"""Suite-wide settings and fixtures: Hypothesis' example database out of the source
tree, and the processes a test starts killed when it ends, pass or fail."""

from __future__ import annotations

import os
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


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Append every process you start; they are SIGKILLed in reverse order at the end."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(signal.SIGKILL)

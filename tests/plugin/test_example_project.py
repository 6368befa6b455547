"""examples/capture-demo runs with only the installed package (issue 16 item 4): its
own pytest in its own directory, no access to our tests/ package or our conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "capture-demo"


def test_the_example_project_passes_with_the_installed_plugin() -> None:
    """issue 16 item 4: the example's tests pass, found through the pytest11 entry point."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 passed" in res.stdout
    # our tests/ package is not importable there: only the installed plugin ran
    probe = subprocess.run(
        [sys.executable, "-c", "import tests.procs"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0

"""The JavaScript package's own tests (js/test/*.test.js) under pytest, so the one test
command (``dev.sh test``, CI's ``.ci/run``) runs them too (issue 15 items 4 and 5).

Each test file is one pytest case, so a failure names the file. Node's test runner
prints its TAP report; on failure it is shown in full. Without node: a failure under
CI (dev.sh installs it; a skip would hide a broken install step), a skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "js"
TESTS = sorted((JS / "test").glob("*.test.js"))


def node() -> str:
    found = shutil.which("node")
    if found is None:
        reason = (
            "node is not installed (Debian package nodejs; bash scripts/dev.sh test installs it)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the JS tests")
        pytest.skip(reason)
    return found


def test_there_are_js_tests() -> None:
    """An empty js/test/ would pass every case below by having none."""
    assert TESTS, f"no *.test.js files under {JS / 'test'}"


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_node_test_file(path: Path) -> None:
    res = subprocess.run(
        [node(), "--test", "--test-reporter=tap", str(path.relative_to(JS))],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert res.returncode == 0, f"{path.name} failed:\n{res.stdout[-8000:]}\n{res.stderr[-4000:]}"

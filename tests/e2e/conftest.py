"""Fixtures for end-to-end tests against a real notification server (dunst on a private bus).

Why one stack per session: starting bus + Xvfb + dunst costs ~0.4 s; each test gets a clean
screen through ``reset()`` instead. Set UNIPUSH_E2E_NO_INSTALL=1 to never apt-get install the
tools (the tests are then skipped if they are missing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notifstack import DunstStack

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as ``e2e`` (so ``-m "not e2e"`` deselects them)."""
    for item in items:
        if item.path.resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def dunst_stack(unipush_dunst_session: DunstStack) -> DunstStack:
    """One real bus + Xvfb + dunst for the whole session, the same one the plugin's
    dunst fixtures use (issue 16 item 3); skipped if the tools are missing."""
    return unipush_dunst_session


@pytest.fixture
def dunst(dunst_stack: DunstStack) -> DunstStack:
    """The session stack with nothing displayed and an empty seen()/monitor_log()."""
    dunst_stack.reset()
    return dunst_stack

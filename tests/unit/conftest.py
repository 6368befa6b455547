"""Unit-test settings: no per-example deadline (a loaded CI machine is not a failure);
Hypothesis' storage is set suite-wide in tests/conftest.py. Fixtures for the daemon
Store's tests: a real SQLite file and a clock the test moves (the store reads
time.time, which ``clock`` replaces)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import settings

from tests.unit.storekit import Clock
from unipush_bridge.runtime import store as store_mod
from unipush_bridge.runtime.store import Store

settings.register_profile("unit", deadline=None)
settings.load_profile("unit")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_mod, "time", SimpleNamespace(time=c))
    return c


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "daemon.sqlite3"


@pytest.fixture
def db(path: Path, clock: Clock) -> Iterator[Store]:
    s = Store(path)
    yield s
    s.close()

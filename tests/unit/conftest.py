"""Unit-test settings: no per-example deadline (a loaded CI machine is not a failure).
Hypothesis' storage is set suite-wide in tests/conftest.py."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("unit", deadline=None)
settings.load_profile("unit")

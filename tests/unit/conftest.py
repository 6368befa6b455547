"""Unit-test settings: keep Hypothesis' cache out of the source tree."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import configuration, settings

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(
        Path(tempfile.gettempdir()) / f"unipush-bridge-hypothesis-{os.getuid()}"
    )

settings.register_profile("unit", deadline=None)
settings.load_profile("unit")

"""Suite-wide settings: keep Hypothesis' example database out of the source tree."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import configuration

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(
        Path(tempfile.gettempdir()) / f"unipush-bridge-hypothesis-{os.getuid()}"
    )

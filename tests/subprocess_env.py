"""The environment for a test's subprocess: this checkout's ``src`` first on PYTHONPATH, so a
benchmark or rank runs the code under test whatever the editable install points at."""

from __future__ import annotations

import os
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def src_first_env(**extra: str) -> dict[str, str]:
    """``os.environ`` with ``SRC`` prepended to PYTHONPATH, plus ``extra`` variables."""
    path = os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}

"""Test configuration: the hypothesis profiles.

``ci`` (the default): bounded example counts, derandomized (the same examples every run, no
example database), no deadline: the fuzz tests in tests/test_fuzz_*.py take a few minutes
in all. ``long``: 10 times the examples, random: a deeper search, run by hand::

    HYPOTHESIS_PROFILE=long PYTHONPATH=src python -m pytest -q tests/test_fuzz_*.py

The variable is read here only; it changes how many inputs the tests try, never rnnlab.
"""

import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=25, derandomize=True, database=None,
                          deadline=None, suppress_health_check=_SLOW)
settings.register_profile("long", max_examples=250, derandomize=False, database=None,
                          deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


import sys  # noqa: E402

import pytest  # noqa: E402
from fake_cupy import make_fake_cupy  # noqa: E402


@pytest.fixture
def fake_cupy(monkeypatch):
    """``sys.modules["cupy"]``: a CuPy stand-in with one GPU (tests/fake_cupy.py); removed
    after the test, so ``Device("cuda")`` on the CPU runs the device path on FakeGPUArray."""
    mod = make_fake_cupy(1)
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod

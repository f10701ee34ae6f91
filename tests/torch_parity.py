"""Shared by the PyTorch-parity tests: tolerances and the one comparison they all use."""

from __future__ import annotations

import numpy as np

TOL = {np.float64: 1e-9, np.float32: 1e-4}  # absolute; every compared value is O(1)


def assert_close(name, ours, theirs, dtype):
    """``ours`` (numpy) equals ``theirs`` (a torch tensor or array): shape, dtype, values."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs torch {theirs.shape}"
    assert ours.dtype == dtype, f"{name}: dtype {ours.dtype}, expected {np.dtype(dtype)}"
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL[dtype], err_msg=name)

"""Array helpers: the layers' random initialisation and input checks (NumPy arrays only)."""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray


def uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: Any) -> Array:
    """U(-bound, bound) samples of ``shape`` drawn from ``rng``, in ``dtype``."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def check_float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_array(name: str, x: Any, dtype: np.dtype, ndim: int) -> None:
    """Raise a ValueError naming ``name`` unless ``x`` is an array of ``ndim`` dims, ``dtype``."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(f"{name} must be an array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dtype != dtype:
        raise ValueError(
            f"{name} has dtype {x.dtype} but the layer is {dtype}: "
            f"cast it with .astype(numpy.{dtype}) or build the layer with dtype=numpy.{x.dtype}"
        )


def check_sizes(**sizes: Any) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for name, v in sizes.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")


def check_ids(ids: Any, n: int, what: str) -> None:
    """Raise a ValueError unless ``ids`` is an integer array of ids in [0, n) (n: ``what``)."""
    if not hasattr(ids, "dtype") or not hasattr(ids, "shape"):
        raise ValueError(f"ids must be an integer array, got {type(ids).__name__}")
    if ids.dtype.kind not in "iu":  # signed or unsigned integers
        raise ValueError(f"ids must be an integer array, got dtype {ids.dtype}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"ids must lie in [0, {n}) ({what}), got id {lo if lo < 0 else hi}")

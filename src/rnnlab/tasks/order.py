"""A task checkpoint's saved epoch order (arrays ``order/index``, ``order/bounds``), checked
before a resume uses it."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.errors import CheckpointError
from rnnlab.training.validate import ADVICE


def check_order(ckpt: Any, n: int) -> list[np.ndarray] | None:
    """The saved epoch's batches (arrays order/index, order/bounds), checked: example
    indices in [0, ``n``), cut by increasing bounds from 0 to their count; None if absent."""
    given = ckpt.part("order/")
    if not given:
        return None

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {ckpt.npz_path} arrays 'order/index' and "
                               f"'order/bounds': {what}: {ADVICE}")

    if set(given) != {"index", "bounds"}:
        raise fail(f"expected exactly these two order/ arrays, got {sorted(given)}")
    index, bounds = given["index"], given["bounds"]
    if index.ndim != 1 or bounds.ndim != 1 or index.dtype.kind not in "iu" or \
            bounds.dtype.kind not in "iu":
        raise fail(f"expected 1-D integer arrays, got {index.shape} {index.dtype} and "
                   f"{bounds.shape} {bounds.dtype}")
    if index.size and (index.min() < 0 or index.max() >= n):
        raise fail(f"expected training example indices in [0, {n})")
    if bounds.size < 2 or bounds[0] != 0 or bounds[-1] != index.size or \
            (np.diff(bounds) <= 0).any():
        raise fail(f"expected bounds increasing from 0 to {index.size} (the batches)")
    return [index[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

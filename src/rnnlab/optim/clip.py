"""Gradient clipping by the global L2 norm."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from rnnlab.optim.base import Params, _check


def _sum_squares(g: np.ndarray, chunk: int = 1 << 16) -> float:
    """Σ g² accumulated in float64, float32 arrays converted a cache-sized chunk at a time."""
    flat = g.reshape(-1)
    if flat.dtype == np.float64:
        return float(np.dot(flat, flat))
    buf = np.empty(min(chunk, flat.size), dtype=np.float64)
    total = 0.0
    for start in range(0, flat.size, chunk):
        part = buf[: min(chunk, flat.size - start)]
        part[...] = flat[start:start + part.size]
        total += float(np.dot(part, part))
    return total


def clip_grad_norm(params: Params, max_norm: float) -> float:
    r"""Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    ``N = √(Σ_p ‖g_p‖²)`` in float64; when ``c = max_norm / (N + 1e-6) < 1`` every gradient
    is multiplied by ``c``, exactly like ``torch.nn.utils.clip_grad_norm_`` (which therefore
    also scales, very slightly, when N is within 1e-6 below ``max_norm``). Returns N before
    clipping. A non-finite N is returned as is and nothing is scaled, so it stays visible.
    """
    max_norm = _check("max_norm", max_norm, "(0, inf)")
    grads = [p.grad for p in (params.values() if isinstance(params, Mapping) else params)]
    norm = sum(_sum_squares(g) for g in grads) ** 0.5
    coef = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and coef < 1.0:
        for g in grads:
            g *= coef
    return norm

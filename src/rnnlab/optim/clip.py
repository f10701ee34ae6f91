"""Gradient clipping by the global L2 norm.

On a GPU the norm is reduced there, all parameters' squares summed on the device, and read
back once (one scalar per step, not one per parameter); the scaling stays on the device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnlab.device import array_module, to_host
from rnnlab.optim.base import Params, _check


def _sum_squares(g: np.ndarray, chunk: int = 4096) -> float:
    """Σ g²: float32 dot products over chunks of 4096, their sum in float64.

    A chunk's float32 sum has a relative error below 4096 * 2^-24 (2.4e-4) in the worst
    case; on random gradients of ptb-medium's sizes the total was within 1e-9 of the
    float64 sum. It reads the array once, with no float64 copy (a conversion pass cost
    2.3 ms more per step at ptb-medium's 20M parameters). Only when a float32 sum
    overflows (elements beyond about 1e19) is the array summed again in float64, so the
    result is infinite only if the float64 sum is.
    """
    flat = g.reshape(-1)
    if flat.dtype == np.float64:
        return float(np.dot(flat, flat))
    total = 0.0
    with np.errstate(over="ignore"):  # an overflow is redone below, not reported
        for start in range(0, flat.size, chunk):
            part = flat[start:start + chunk]
            total += float(np.dot(part, part))
    if math.isinf(total):  # overflow in float32 (or a true inf: the float64 sum says which)
        return float(np.sum(np.square(flat, dtype=np.float64)))
    return total


def _grads(params: Params) -> list[np.ndarray]:
    return [p.grad for p in (params.values() if isinstance(params, Mapping) else params)]


def grad_norm(params: Params) -> float:
    r"""The global L2 norm of the gradients, ``N = √(Σ_p ‖g_p‖²)``, summed in float64.

    NaN or inf when a gradient holds one. :func:`clip_grad_norm` returns the same number.

    >>> from rnnlab.nn import Parameter
    >>> p, q = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    >>> p.grad[...], q.grad[...] = [3.0, 0.0], [4.0]
    >>> grad_norm([p, q])
    5.0
    """
    grads = _grads(params)
    if grads and array_module(grads[0]) is not np:
        return _device_sum_squares(grads) ** 0.5
    return sum(_sum_squares(g) for g in grads) ** 0.5


def clip_and_read(params: Params, max_norm: float, loss: Any) -> tuple[float, float]:
    """One training step's clipping: ``(loss, norm)`` as host floats, the norm before
    clipping (``max_norm`` 0: no clipping, as :func:`grad_norm`).

    On the CPU this is :func:`clip_grad_norm` (or :func:`grad_norm`) and ``float(loss)``. On
    a GPU the norm stays there, the gradients are scaled there by min(1, c) (c as in
    :func:`clip_grad_norm`; a non-finite norm scales nothing), and the loss (a 0-d device
    array) and the norm come back together: the step's one device-to-host read.
    """
    grads = _grads(params)
    if not grads or array_module(grads[0]) is np:
        norm = clip_grad_norm(params, max_norm) if max_norm > 0 else grad_norm(params)
        return float(loss), norm
    xp = array_module(grads[0])
    norm = xp.sqrt(sum(xp.dot(g.reshape(-1), g.reshape(-1)).astype(xp.float64)
                       for g in grads))
    if max_norm > 0:
        coef = _check("max_norm", max_norm, "(0, inf)") / (norm + 1e-6)
        coef = xp.where(xp.isfinite(norm) & (coef < 1.0), coef, 1.0)
        for g in grads:
            g *= coef.astype(g.dtype)
    pair = to_host(xp.stack([xp.asarray(loss, dtype=xp.float64), norm]))  # the one read
    read_loss, read_norm = float(pair[0]), float(pair[1])
    if math.isinf(read_norm) and any(g.dtype != np.float64 for g in grads):
        read_norm = _device_sum_squares(grads) ** 0.5  # float32 squares overflowed: float64
        if max_norm > 0 and math.isfinite(read_norm) and max_norm / (read_norm + 1e-6) < 1:
            for g in grads:
                g *= max_norm / (read_norm + 1e-6)
    return read_loss, read_norm


def _device_sum_squares(grads: list[np.ndarray]) -> float:
    """Σ over all gradients of Σ g², summed on their device (cuBLAS dot per gradient, the
    total in float64), then one read to the host; redone in float64 if float32 overflowed."""
    xp = array_module(grads[0])
    total = sum(xp.dot(g.reshape(-1), g.reshape(-1)).astype(xp.float64) for g in grads)
    out = float(total)  # type: ignore[arg-type]  # the step's one read of the norm
    if math.isinf(out) and any(g.dtype != np.float64 for g in grads):
        out = float(sum(xp.square(g, dtype=xp.float64).sum() for g in grads))
    return out


def clip_grad_norm(params: Params, max_norm: float) -> float:
    r"""Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    ``N = √(Σ_p ‖g_p‖²)`` (summed in float64); when ``c = max_norm / (N + 1e-6) < 1``, every
    gradient is multiplied by ``c``, exactly like ``torch.nn.utils.clip_grad_norm_`` (which
    therefore also scales, very slightly, when N is within 1e-6 below ``max_norm``). Returns
    N before clipping (:func:`grad_norm`). A non-finite N is returned as is and nothing is
    scaled, so it stays visible.

    >>> from rnnlab.nn import Parameter
    >>> p = Parameter(np.zeros(2))
    >>> p.grad[...] = [3.0, 4.0]
    >>> clip_grad_norm({"p": p}, max_norm=1.0)  # the norm before clipping
    5.0
    >>> p.grad.round(6)  # scaled by 1 / (5 + 1e-6)
    array([0.6, 0.8])
    """
    max_norm = _check("max_norm", max_norm, "(0, inf)")
    grads = _grads(params)
    norm = grad_norm(params)
    coef = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and coef < 1.0:
        for g in grads:
            g *= coef
    return norm

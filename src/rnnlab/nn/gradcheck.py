"""Finite-difference gradient checking in float64, for any layer or model.

The check compares the analytic gradient from ``backward`` with the central difference

    dL/dw  ~  (L(w + eps) - L(w - eps)) / (2 eps)

for every element of every array checked, and reports the relative error of each array:

    rel_err(a, n) = max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|, tiny)

(the error measured against the gradient's own scale, so a few near-zero elements do
not dominate). With eps = 1e-6 in float64 a correct backward pass gives about 1e-9.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rnnlab._array import Array

TINY = 1e-12


def rel_error(analytic: Array, numeric: Array) -> float:
    """Max absolute difference over the larger of the two arrays' max magnitudes."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n), initial=0.0)), TINY)
    return float(np.max(np.abs(a - n), initial=0.0)) / scale


def numerical_gradient(loss_fn: Callable[[], float], x: Array, eps: float = 1e-6) -> Array:
    """Central differences of ``loss_fn()`` with respect to ``x`` (perturbed in place, restored)."""
    if x.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays, got {x.dtype}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x must be contiguous
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss_fn()
        flat[i] = old - eps
        minus = loss_fn()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check(
    loss_fn: Callable[[], float], wrt: Mapping[str, tuple[Array, Array]], eps: float = 1e-6
) -> dict[str, float]:
    """Relative error per name, where ``wrt[name] = (array perturbed in place, analytic grad)``."""
    return {
        name: rel_error(analytic, numerical_gradient(loss_fn, value, eps))
        for name, (value, analytic) in wrt.items()
    }


def random_like(rng: np.random.Generator, out: Any) -> Any:
    """A random upstream gradient with the same (possibly nested tuple) structure as ``out``."""
    if isinstance(out, (tuple, list)):
        return type(out)(random_like(rng, o) for o in out)
    if out is None:
        return None
    return rng.standard_normal(np.shape(out))


def dot(a: Any, b: Any) -> float:
    """sum(a * b) over matching (possibly nested tuple) structures: the loss L = <G, out>."""
    if isinstance(a, (tuple, list)):
        return sum(dot(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return 0.0
    return float(np.sum(np.asarray(a) * np.asarray(b)))


def check_module(
    module: Any,
    forward: Callable[[], Any],
    backward: Callable[[Any], Mapping[str, Array]],
    inputs: Mapping[str, Array],
    *,
    rng: np.random.Generator,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Check every parameter of ``module`` and every array in ``inputs``.

    ``forward()`` runs the module on the current values (it must be deterministic: reset any
    dropout generator inside it) and returns its outputs; ``backward(G)`` runs the backward
    pass for upstream gradient ``G`` and returns ``{input name: gradient}``. The scalar
    checked is ``L = <G, forward()>`` for a fixed random ``G``.

    >>> from rnnlab.nn import Linear
    >>> rng = np.random.default_rng(0)
    >>> layer = Linear(3, 2, dtype=np.float64, rng=rng)
    >>> x = rng.standard_normal((4, 3))
    >>> errors = check_module(layer, lambda: layer.forward(x),
    ...                       lambda g: {"x": layer.backward(g)}, {"x": x}, rng=rng)
    >>> sorted(errors), max(errors.values()) < 1e-7
    (['bias', 'weight', 'x'], True)
    """
    out = forward()
    upstream = random_like(rng, out)
    module.zero_grad()
    input_grads = backward(upstream)
    wrt = {name: (p.value, p.grad.copy()) for name, p in module.named_params().items()}
    wrt.update({name: (x, input_grads[name]) for name, x in inputs.items()})
    return check(lambda: dot(upstream, forward()), wrt, eps)

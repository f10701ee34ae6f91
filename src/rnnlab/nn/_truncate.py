"""Truncated backpropagation through time inside one window: gradient streams by age.

With ``backward(..., truncate=k)`` the gradient arriving at step t (from the output, or the
final state at t = T-1) flows back through at most k earlier steps. The backward loop then
carries one gradient "stream" per age 0..k, shape (k+1, N, H): every stream goes through
the step's equations at once (they broadcast over the leading axis), and after each step
the streams age by one and the oldest is dropped. Layers below get the input gradient per
age, so the limit is counted from the step of the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array, empty, zeros
from rnnlab.nn._state import add_output_grad


def truncated_loop(
    layer: Any, k: int, dy: Array, dcy: Array | None, dstate: tuple[Array, ...],
    dG: Array, dGh: Array, A: int,
) -> tuple[Array, tuple[Array, ...]]:
    """Layer k's backward loop with A = k_trunc + 1 ages; fills dG, dGh (T, N, gates*H).

    dy, dcy: (T, A, N, H) output gradients by age. Returns dx (T, A, N, D) by age and the
    gradient of the initial state (all ages that reached it, summed). After forward_rows,
    layer 0's "dx" is the gradient of its looked-up rows, (T, A, N, gates*H).
    """
    T, N, GH = dG.shape
    rows = layer._inputs[k] is None
    W_ih = layer.weights[k]["weight_ih"].value  # (gates*H, D)
    dstate = tuple(by_age(s[None], A)[0] for s in dstate)  # (A, N, H), age 0 only
    g = empty((A, N, GH), layer.dtype, layer.xp)
    gh = empty((A, N, GH), layer.dtype, layer.xp) if layer.separate_hidden_grad else g
    dx = zeros((T, A, N, GH if rows else W_ih.shape[1]), layer.dtype, layer.xp)
    for t in reversed(range(T)):
        dstate = add_output_grad(dstate, dy[t], None if dcy is None else dcy[t])
        dstate = layer._step_backward(k, t, dstate, g, gh)
        g.sum(axis=0, out=dG[t])  # the weights see all streams together
        if gh is not g:
            gh.sum(axis=0, out=dGh[t])
        dx[t] = g if rows else g @ W_ih  # (A, N, D) input gradient per age
        dstate = tuple(age(s) for s in dstate)
    return dx, tuple(s.sum(axis=0) for s in dstate)


def by_age(g: Array, A: int) -> Array:
    """(T, N, H) -> (T, A, N, H) with everything at age 0 (a stream just born)."""
    out = np.zeros((g.shape[0], A, *g.shape[1:]), dtype=g.dtype)
    out[:, 0] = g
    return out


def age(s: Array) -> Array:
    """Streams one step older: age a -> a + 1; the oldest has gone its k steps and is dropped."""
    out = np.zeros_like(s)
    out[1:] = s[:-1]
    return out

"""Truncated backpropagation through time inside one window: gradient streams by age.

With ``backward(..., truncate=k)`` the gradient arriving at step t (from the output, or the
final state at t = T-1) flows back through at most k earlier steps. The backward loop then
carries one gradient "stream" per age 0..k, shape (k+1, N, H): every stream goes through
the step's equations at once (they broadcast over the leading axis), and after each step
the streams age by one and the oldest is dropped. Layers below get the input gradient per
age, so the limit is counted from the step of the loss.
"""

from __future__ import annotations

from collections.abc import Callable

from rnnlab._array import Array
from rnnlab.device import array_module
from rnnlab.nn._state import add_output_grad, by_age

# a cell's _step_backward(k, t, dstate, dG_t, dGh_t) -> dstate_{t-1}, with k bound
StepBackward = Callable[[int, tuple[Array, ...], Array, Array], tuple[Array, ...]]


def truncated_loop(
    step_backward: StepBackward, W_ih: Array | None, dy: Array, dcy: Array | None,
    dstate: tuple[Array, ...], dG: Array, dGh: Array | None, A: int,
) -> tuple[Array, tuple[Array, ...]]:
    """One layer's backward loop with A = k_trunc + 1 ages; fills dG, dGh (T, N, gates*H).

    step_backward(t, dstate, dG_t, dGh_t): the layer's step (dGh None: the same as dG).
    W_ih: (gates*H, D), or None after forward_rows (then "dx" is the gradient of the
    looked-up rows, (T, A, N, gates*H)). dy, dcy: (T, A, N, H) output gradients by age.
    Returns dx (T, A, N, D) by age and the gradient of the initial state (all ages that
    reached it, summed).
    """
    T, N, GH = dG.shape
    xp = array_module(dG)
    dstate = tuple(by_age(s[None], A)[0] for s in dstate)  # (A, N, H), age 0 only
    g = xp.empty((A, N, GH), dG.dtype)
    gh = g if dGh is None else xp.empty((A, N, GH), dG.dtype)
    dx = xp.zeros((T, A, N, GH if W_ih is None else W_ih.shape[1]), dG.dtype)
    for t in reversed(range(T)):
        dstate = add_output_grad(dstate, dy[t], None if dcy is None else dcy[t])
        dstate = step_backward(t, dstate, g, gh)
        g.sum(axis=0, out=dG[t])  # the weights see all streams together
        if dGh is not None:
            gh.sum(axis=0, out=dGh[t])
        dx[t] = g if W_ih is None else g @ W_ih  # (A, N, D) input gradient per age
        dstate = tuple(age(s) for s in dstate)
    return dx, tuple(s.sum(axis=0) for s in dstate)


def age(s: Array) -> Array:
    """Streams one step older: age a -> a + 1; the oldest has gone its k steps and is dropped."""
    out = array_module(s).zeros_like(s)
    out[1:] = s[:-1]
    return out

"""How far back in time the gradient reaches: norms of dL/dh by distance, and their decay.

Backpropagation through time multiplies the gradient by one Jacobian per step, so in a
vanilla RNN its norm typically shrinks geometrically (Bengio, Simard & Frasconi 1994;
Pascanu, Mikolov & Bengio 2013): a loss can then not teach the network anything about
inputs more than a few dozen steps back. The LSTM's additive cell path (c_t = f c_{t-1} + ...)
lets dL/dc fade only as fast as the forget gates close. This module measures it.

Input: per curve (a label such as ``"rnn"``, ``"lstm h"``, ``"lstm c"``), norms (K,) where
``norms[k] = ||dL/dh_{T-1-k}||``, k steps back from the last step. They should come from a
loss at the *last step only* (one output's gradient with respect to earlier states): with
a loss at every step each state gets its own direct gradient and nothing decays.
:func:`norms_by_distance` turns a layer's per-step state gradients into such norms.

Measured, per curve: the decay per step, the geometric mean of norm[k+1] / norm[k] over
a stated range [start, stop), which telescopes to (norm[stop-1] / norm[start])^(1 / n)
with n = stop - 1 - start; and the first distance at which the norm is 10^3 times smaller
than at k = 0 (None when it never is within K steps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FALL = 1e3


def norms_by_distance(grads: np.ndarray) -> np.ndarray:
    """Gradient norms by distance back in time from a layer's per-step state gradients.

    ``grads`` (T, N, H): dL/dh_t for t = 0..T-1 (N sequences, H cells). Returns (T,)
    float64: element k is the L2 norm over H of dL/dh_{T-1-k}, averaged over the N
    sequences (so k = 0 is the last step).

    >>> g = np.zeros((3, 2, 2)); g[:, :, 0] = [[1.0], [2.0], [4.0]]   # (T=3, N=2, H=2)
    >>> norms_by_distance(g).tolist()
    [4.0, 2.0, 1.0]
    """
    g = np.asarray(grads, dtype=np.float64)
    if g.ndim != 3:
        raise ValueError(f"grads must be (T, N, H), got shape {g.shape}")
    return np.sqrt((g * g).sum(axis=2)).mean(axis=1)[::-1].copy()  # (T,) last step first


def measure_decay(norms: np.ndarray, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """The decay of ``norms`` (K,) (``norms[k]`` = ||dL/dh_{T-1-k}||), JSON-able.

    ``decay_per_step``: geometric mean of norm[k+1] / norm[k] over ``range`` = [start, stop),
    shortened to end before the first zero or non-finite norm (underflow) and None when
    fewer than two norms remain. ``steps_to_fall_1e3``: the first k with
    norm[k] <= norm[0] / 1000, or None; ``steps_to_fall_1e3_from_decay``: the same
    predicted from the decay, log(1e-3) / log(decay), None unless 0 < decay < 1.

    >>> r = measure_decay(0.5 ** np.arange(20))
    >>> round(r["decay_per_step"], 9), r["steps_to_fall_1e3"], r["range"]
    (0.5, 10, [0, 20])
    >>> round(r["steps_to_fall_1e3_from_decay"], 2)
    9.97
    """
    x = np.asarray(norms, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"norms must be a non-empty (K,) array, got shape {x.shape}")
    stop = x.size if stop is None else min(stop, x.size)
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop <= {x.size}, got start={start}, stop={stop}")
    bad = np.flatnonzero(~(np.isfinite(x[start:stop]) & (x[start:stop] > 0)))
    end = start + int(bad[0]) if bad.size else stop  # usable: [start, end)
    decay = None
    if end - start >= 2:
        decay = math.exp((math.log(x[end - 1]) - math.log(x[start])) / (end - 1 - start))
    fallen = np.flatnonzero(x <= x[0] / FALL) if np.isfinite(x[0]) and x[0] > 0 else x[:0]
    predicted = math.log(1 / FALL) / math.log(decay) if decay and 0 < decay < 1 else None
    return {
        "range": [start, end], "decay_per_step": decay,
        "steps_to_fall_1e3": int(fallen[0]) if fallen.size else None,
        "steps_to_fall_1e3_from_decay": predicted, "K": int(x.size),
    }


def gradient_flow_report(
    curves: Mapping[str, np.ndarray], start: int = 0, stop: int | None = None
) -> dict[str, dict[str, Any]]:
    """:func:`measure_decay` of every curve (label -> norms (K,)), same range for all.

    >>> rep = gradient_flow_report({"rnn": 0.8 ** np.arange(50), "lstm": np.ones(50)})
    >>> round(rep["rnn"]["decay_per_step"], 6), rep["lstm"]["steps_to_fall_1e3"]
    (0.8, None)
    """
    return {label: measure_decay(norms, start, stop) for label, norms in curves.items()}


def plot_gradient_flow(
    curves: Mapping[str, np.ndarray], out: str | Path, *, relative: bool = True,
    title: str = "Gradient flow through time",
) -> Path:
    """Write a log-scale PNG of each curve (label -> norms (K,)) against distance k to ``out``.

    ``relative``: divide each curve by its norm at k = 0 so that cells compare at a glance.
    Zero or non-finite norms are left out (a log axis cannot show them). The legend gives
    each curve's measured decay per step.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_gradient_flow({"rnn": 0.7 ** np.arange(30)}, os.path.join(d, "g.png"))
    ...     p.read_bytes()[:4]
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    from rnnlab.training.plot import save_png

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for label, norms in curves.items():
        y = np.asarray(norms, dtype=np.float64)
        decay = measure_decay(y)["decay_per_step"]
        if relative and np.isfinite(y[0]) and y[0] > 0:
            y = y / y[0]
        shown = np.isfinite(y) & (y > 0)
        text = "n/a" if decay is None else f"{decay:.3f}"
        ax.semilogy(np.flatnonzero(shown), y[shown], label=f"{label} (x{text} per step)")
    ax.set_xlabel("steps back in time k")
    ax.set_ylabel("||dL/dh_{T-1-k}||" + (" / ||dL/dh_{T-1}||" if relative else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, out)

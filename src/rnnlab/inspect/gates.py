"""Gate statistics of LSTM and GRU layers: how often each gate is saturated, and its histogram.

A gate near 0 or 1 is a switch: a forget gate near 1 keeps the cell for long, one near 0
wipes it. Karpathy, Johnson & Fei-Fei (2015, section 4.2) plot the fraction of time each
gate is left-saturated (< 0.1) or right-saturated (> 0.9) and find, for instance, forget
gates that are almost always right-saturated: integrators that remember for long. Mostly
saturated gates also pass almost no gradient (sigma' = sigma (1 - sigma) <= 0.09 there);
gates that never leave the middle may mean an untrained or over-regularised layer.

Input: ``gates[layer][name]``, one array (T, N, H) per gate per layer (T steps, N sequences,
H cells), the activations *after* the nonlinearity, as the layer computed them:

- LSTM ``i, f, g, o``: i, f, o sigmoid; g tanh (gate order of PyTorch's nn.LSTM).
- GRU ``r, z, n``: r, z sigmoid; n tanh. In PyTorch's GRU ``h_t = (1 - z) n + z h_{t-1}``:
  z is the share of the old state kept, the GRU's forget gate.

Saturated: a sigmoid gate < 0.1 or > 0.9; a tanh gate with |x| > 0.9.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SIGMOID, TANH = "sigmoid", "tanh"
CELLS = {  # gate name -> its nonlinearity, in the layer's gate order
    "lstm": {"i": SIGMOID, "f": SIGMOID, "g": TANH, "o": SIGMOID},
    "gru": {"r": SIGMOID, "z": SIGMOID, "n": TANH},
}
FORGET = {"lstm": "f", "gru": "z"}
LOW, HIGH, TANH_SAT = 0.1, 0.9, 0.9
BINS = 20

Gates = Sequence[Mapping[str, np.ndarray]]


def cell_kind(names: Sequence[str]) -> str:
    """``"lstm"`` or ``"gru"`` from one layer's gate names (any order).

    >>> cell_kind(["f", "i", "o", "g"]), cell_kind(("r", "z", "n"))
    ('lstm', 'gru')
    """
    for kind, gates in CELLS.items():
        if set(names) == set(gates):
            return kind
    raise ValueError(f"gate names {sorted(names)} are neither an LSTM's (i, f, g, o) "
                     "nor a GRU's (r, z, n)")


def gate_stats(values: np.ndarray, nonlinearity: str) -> dict[str, Any]:
    """Statistics of one gate's activations (any shape, e.g. (T, N, H)), JSON-able.

    ``saturated`` = ``low`` + ``high``: fractions below 0.1 / above 0.9 (sigmoid) or below
    -0.9 / above 0.9 (tanh). ``histogram``: counts in 20 equal bins over [0, 1] or [-1, 1].

    >>> s = gate_stats(np.array([0.05, 0.5, 0.95, 0.99]), "sigmoid")
    >>> s["low"], s["high"], s["saturated"], s["mean"]
    (0.25, 0.5, 0.75, 0.6225)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"gate activations must be non-empty and finite, got {x.size} values "
                         f"with {x.size - int(np.isfinite(x).sum())} not finite")
    lo, hi = (LOW, HIGH) if nonlinearity == SIGMOID else (-TANH_SAT, TANH_SAT)
    edges = np.linspace(0.0 if nonlinearity == SIGMOID else -1.0, 1.0, BINS + 1)
    counts, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
    low, high = float(np.mean(x < lo)), float(np.mean(x > hi))
    return {
        "nonlinearity": nonlinearity, "mean": round(float(x.mean()), 6),
        "std": round(float(x.std()), 6), "low": low, "high": high, "saturated": low + high,
        "histogram": {"edges": edges.round(6).tolist(), "counts": counts.tolist()},
    }


def gate_report(gates: Gates) -> dict[str, Any]:
    """Per layer: every gate's :func:`gate_stats`, the layer's saturated fraction over all its
    gate activations, and the mean forget gate (LSTM f, GRU z). JSON-able.

    ``gates[layer][name]`` is (T, N, H), names i, f, g, o (LSTM) or r, z, n (GRU).

    >>> f = np.full((2, 1, 3), 0.95)                      # (T=2, N=1, H=3)
    >>> g = np.array([0.0, 0.5, -0.99]).reshape(1, 1, 3).repeat(2, axis=0)
    >>> layer = {"i": f * 0 + 0.5, "f": f, "g": g, "o": f * 0 + 0.5}
    >>> r = gate_report([layer])
    >>> r["cell"], r["layers"][0]["forget_mean"], r["layers"][0]["saturated"]
    ('lstm', 0.95, 0.3333333333333333)
    """
    if not gates:
        raise ValueError("gates is empty: expected one {gate name: (T, N, H) array} per layer")
    kinds = {cell_kind(list(layer)) for layer in gates}
    if len(kinds) != 1:
        raise ValueError(f"all layers must be of one kind, got {sorted(kinds)}")
    kind = kinds.pop()
    layers = []
    for k, layer in enumerate(gates):
        shapes = {np.shape(v) for v in layer.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ValueError(f"layer {k}: every gate must be one (T, N, H) array, got {shapes}")
        stats = {name: gate_stats(layer[name], nl) for name, nl in CELLS[kind].items()}
        size = sum(np.size(layer[name]) for name in stats)
        saturated = sum(s["saturated"] * np.size(layer[n]) for n, s in stats.items()) / size
        layers.append({"layer": k, "gates": stats, "saturated": float(saturated),
                       "forget_gate": FORGET[kind],
                       "forget_mean": stats[FORGET[kind]]["mean"]})
    return {"cell": kind, "low": LOW, "high": HIGH, "tanh_saturated": TANH_SAT,
            "layers": layers}


def plot_gates(report: Mapping[str, Any], out: str | Path) -> Path:
    """Write the histograms of :func:`gate_report` as a PNG to ``out``: one row per layer,
    one panel per gate, the saturated regions shaded, the fraction in each title.

    >>> import tempfile, os
    >>> layer = {n: np.full((4, 1, 2), 0.5) for n in "ifgo"}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_gates(gate_report([layer]), os.path.join(d, "gates.png"))
    ...     p.read_bytes()[:4]
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    from rnnlab.training.plot import save_png

    layers = report["layers"]
    names = list(CELLS[report["cell"]])
    fig = Figure(figsize=(3.0 * len(names), 2.4 * len(layers) + 0.6))
    axes = fig.subplots(len(layers), len(names), squeeze=False)
    for row, layer in zip(axes, layers, strict=True):
        for ax, name in zip(row, names, strict=True):
            _histogram(ax, name, layer["gates"][name], layer["layer"])
    fig.suptitle(f"{report['cell'].upper()} gate activations (shaded: saturated)")
    fig.tight_layout()
    return save_png(fig, out)


def _histogram(ax: Any, name: str, stats: Mapping[str, Any], layer: int) -> None:
    edges = np.asarray(stats["histogram"]["edges"])
    counts = np.asarray(stats["histogram"]["counts"], dtype=np.float64)
    share = counts / max(counts.sum(), 1.0)
    ax.bar(edges[:-1], share, width=np.diff(edges), align="edge", color="#4575b4",
           edgecolor="white", linewidth=0.5)
    lo, hi = (LOW, HIGH) if stats["nonlinearity"] == SIGMOID else (-TANH_SAT, TANH_SAT)
    ax.axvspan(edges[0], lo, color="#d73027", alpha=0.12, linewidth=0)
    ax.axvspan(hi, edges[-1], color="#d73027", alpha=0.12, linewidth=0)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_title(f"layer {layer} {name} ({stats['nonlinearity']}): "
                 f"{100 * stats['saturated']:.0f}% sat.", fontsize=9)
    ax.set_xlabel(f"mean {stats['mean']:.2f}", fontsize=8)
    ax.tick_params(labelsize=7)

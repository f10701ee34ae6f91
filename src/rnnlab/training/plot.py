"""The loss curve and training health of a run folder, redrawn from ``metrics.jsonl`` at every
evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnnlab.atomic import atomic_open


def plot_losses(run_dir: str | Path) -> Path:
    """Write ``loss.png``: training and validation loss (nats per token) against step, and
    beside it the gradient norms (pre-clip: at the evaluation step, mean since the previous
    one) with the fraction of steps clipped, where ``metrics.jsonl`` has them."""
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    steps = [r["step"] for r in rows]
    health = any("grad_norm_mean" in r for r in rows)
    fig = Figure(figsize=(12 if health else 7, 4))
    axes = fig.subplots(1, 2 if health else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(steps, [r["train_loss"] for r in rows], label="train (mean since last eval)")
    ax.plot(steps, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    if health:
        plot_health(axes[1], rows)
    fig.tight_layout()
    return save_png(fig, run_dir / "loss.png")


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[Any], list[Any]]:
    """(steps, values) of the rows that have a number under ``key`` (older runs may not)."""
    kept = [r for r in rows if isinstance(r.get(key), (int, float))]
    return [r["step"] for r in kept], [r[key] for r in kept]


def plot_health(ax: Any, rows: list[dict[str, Any]]) -> None:
    """Gradient norms (log scale) on ``ax``, the fraction of steps clipped on a twin axis."""
    positive = False
    for key, label in (("grad_norm", "pre-clip norm at the eval step"),
                       ("grad_norm_mean", "mean pre-clip norm since last eval")):
        x, y = _series(rows, key)
        if x:
            ax.plot(x, y, marker=".", label=label)
            positive = positive or any(v > 0 for v in y)
    if positive:  # a log axis needs a positive value (a run of zero gradients has none)
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient L2 norm")
    ax.grid(alpha=0.3, which="both")
    x, y = _series(rows, "clipped_frac")
    twin = ax.twinx()
    twin.plot(x, y, color="#d73027", linestyle="--", label="fraction of steps clipped")
    twin.set_ylim(-0.02, 1.02)
    twin.set_ylabel("fraction clipped", color="#d73027")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)


def save_png(fig: Any, out: str | Path, dpi: int = 100) -> Path:
    """Write the matplotlib figure ``fig`` to ``out`` as PNG atomically; returns ``out``.

    A figure built as ``matplotlib.figure.Figure()`` needs no pyplot and no backend.
    """
    out = Path(out)
    with atomic_open(out, "wb") as f:  # never a half-written picture
        fig.savefig(f, format="png", dpi=dpi)
    return out

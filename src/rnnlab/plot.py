"""The loss curve of a run folder, redrawn from ``metrics.jsonl`` at every evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnnlab.atomic import atomic_open


def plot_losses(run_dir: str | Path) -> Path:
    """Write ``loss.png``: training and validation loss (nats per token) against step."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["train_loss"] for r in rows], label="train (mean since last eval)")
    ax.plot(steps, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        return save_png(fig, run_dir / "loss.png")
    finally:
        plt.close(fig)


def save_png(fig: Any, out: str | Path, dpi: int = 100) -> Path:
    """Write the matplotlib figure ``fig`` to ``out`` as PNG atomically; returns ``out``.

    A figure built as ``matplotlib.figure.Figure()`` needs no pyplot and no backend.
    """
    out = Path(out)
    with atomic_open(out, "wb") as f:  # never a half-written picture
        fig.savefig(f, format="png", dpi=dpi)
    return out

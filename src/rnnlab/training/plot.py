"""The loss curve and training health of a run folder, redrawn from ``metrics.jsonl`` at every
evaluation.

Where the run folder also has ``steps.jsonl`` (one row every ``--log-every`` steps:
``{"step", "epoch", "train_loss", "grad_norm", "lr"}``, each loss and norm the mean over the
steps since the previous row), the per-step training loss and gradient norm are drawn as thin
lines under the evaluation points. Run folders without it are drawn as before.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from rnnlab.atomic import atomic_open

TRAIN, VAL = "#1f77b4", "#ff7f0e"  # matplotlib's C0 and C1: the colours before steps.jsonl
STEP_LINE = {"linewidth": 0.9, "alpha": 0.6, "zorder": 1}  # under the evaluation points
EVAL_ZORDER = 3
EVAL_MARKERS = {"linestyle": "none", "marker": "s", "markersize": 5}  # train at each evaluation


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _step_row(line: str) -> dict[str, Any] | None:
    """One line of ``steps.jsonl`` as a row, or None if it is damaged (see load_steps)."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, a 5000-digit integer, deep nesting
        return None
    if not isinstance(row, dict) or not _is_number(row.get("step")):
        return None
    if not math.isfinite(row["step"]):
        return None
    loss = row.get("train_loss")
    if not (loss is None and "train_loss" in row) and not _is_number(loss):
        return None
    return row


def load_steps(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/steps.jsonl``, in order of step; none if the file is absent.

    A plot must never fail on this file, so what cannot be read is left out instead of raised:
    a line that is not a JSON object, or whose ``step`` is missing or not a finite number, or
    whose ``train_loss`` is missing or neither a number nor null, is skipped (a run killed
    mid-write leaves half a line); an unreadable file reads as absent. A null ``train_loss``
    (a non-finite loss, written by ``json_line`` as null) is kept and drawn as a gap.

    Where a step is not after the one before it (a resumed run writing again from its
    checkpoint over a killed run's tail), the later rows replace the earlier ones from that
    step on, as ``metrics.jsonl`` is trimmed on resume.
    """
    path = Path(run_dir) / "steps.jsonl"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # absent, a folder, unreadable
        return []
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        row = _step_row(line) if line.strip() else None
        if row is None:
            continue
        while rows and rows[-1]["step"] >= row["step"]:
            rows.pop()
        rows.append(row)
    return rows


def log_every(steps: list[dict[str, Any]]) -> int:
    """The logging interval of ``steps`` (rows of load_steps): the commonest gap between two
    rows, or the first row's step if there is one row.

    >>> log_every([{"step": 10}, {"step": 20}, {"step": 30}, {"step": 35}])
    10
    """
    gaps = [b["step"] - a["step"] for a, b in zip(steps, steps[1:], strict=False)]
    if not gaps:
        return int(steps[0]["step"]) if steps else 0
    return int(Counter(gaps).most_common(1)[0][0])


def step_series(steps: list[dict[str, Any]], key: str) -> tuple[list[Any], list[float]]:
    """(steps, values) of ``key`` in ``steps``: null as NaN (a gap in the line); rows where
    ``key`` is missing or not a number are left out."""
    kept = [r for r in steps if (key in r and r[key] is None) or _is_number(r.get(key))]
    return [r["step"] for r in kept], [math.nan if r[key] is None else r[key] for r in kept]


def plot_step_curve(ax: Any, steps: list[dict[str, Any]], key: str, label: str,
                    color: str) -> bool:
    """Draw ``key`` of every row of ``steps`` on ``ax`` as a thin line under the evaluation
    points, labelled ``"<label> (every N steps)"``; True if anything was drawn."""
    x, y = step_series(steps, key)
    if not x:
        return False
    ax.plot(x, y, color=color, label=f"{label} (every {log_every(steps)} steps)",
            gid=f"steps:{key}", **STEP_LINE)
    return True


def plot_loss(ax: Any, rows: list[dict[str, Any]], steps: list[dict[str, Any]]) -> None:
    """Training and validation loss on ``ax``: the rows of ``metrics.jsonl`` (``rows``), and
    under them the per-step training loss of ``steps.jsonl`` (``steps``) if there is any. With
    the per-step line, the training loss at each evaluation is drawn as markers only."""
    x = [r["step"] for r in rows]
    fine = plot_step_curve(ax, steps, "train_loss", "train", TRAIN)
    ax.plot(x, [r["train_loss"] for r in rows], color=TRAIN, label="train (mean since last eval)",
            zorder=EVAL_ZORDER + 1, **(EVAL_MARKERS if fine else {}))  # over validation's
    ax.plot(x, [r["val_loss"] for r in rows], color=VAL, marker="o", zorder=EVAL_ZORDER,
            label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()


def loss_figure(run_dir: str | Path) -> Any:
    """The matplotlib Figure of ``loss.png`` for ``run_dir`` (see plot_losses)."""
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    steps = load_steps(run_dir)
    health = (any("grad_norm_mean" in r for r in rows)
              or bool(step_series(steps, "grad_norm")[0]))
    fig = Figure(figsize=(12 if health else 7, 4))
    axes = fig.subplots(1, 2 if health else 1, squeeze=False)[0]
    plot_loss(axes[0], rows, steps)
    if health:
        plot_health(axes[1], rows, steps)
    fig.tight_layout()
    return fig


def plot_losses(run_dir: str | Path) -> Path:
    """Write ``loss.png``: training and validation loss (nats per token) against step, and
    beside it the gradient norms (pre-clip: at the evaluation step, mean since the previous
    one) with the fraction of steps clipped, where ``metrics.jsonl`` has them. With
    ``steps.jsonl`` (load_steps), the training loss and gradient norm every N steps too."""
    return save_png(loss_figure(run_dir), Path(run_dir) / "loss.png")


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[Any], list[Any]]:
    """(steps, values) of the rows that have a number under ``key`` (older runs may not)."""
    kept = [r for r in rows if isinstance(r.get(key), (int, float))]
    return [r["step"] for r in kept], [r[key] for r in kept]


def plot_health(ax: Any, rows: list[dict[str, Any]],
                steps: list[dict[str, Any]] | None = None) -> None:
    """Gradient norms (log scale) on ``ax``, the fraction of steps clipped on a twin axis; the
    mean pre-clip norm of every row of ``steps`` (steps.jsonl) as a thin line under them."""
    positive = False
    if steps and plot_step_curve(ax, steps, "grad_norm", "mean pre-clip norm", VAL):
        positive = any(v > 0 for v in step_series(steps, "grad_norm")[1])
    for key, label, color in (("grad_norm", "pre-clip norm at the eval step", TRAIN),
                              ("grad_norm_mean", "mean pre-clip norm since last eval", VAL)):
        x, y = _series(rows, key)
        if x:
            ax.plot(x, y, marker=".", label=label, color=color, zorder=EVAL_ZORDER)
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

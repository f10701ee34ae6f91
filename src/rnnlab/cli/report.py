"""``rnnlab report RUN``: one self-contained HTML page about a training run, ``RUN/report.html``.

Read from the run folder only (``metrics.jsonl``, ``steps.jsonl``, ``config.json``, the
checkpoint), every field and file optional so that runs of other kinds and older runs still get
a page::

    loss            train (mean since the last evaluation) and validation, nats per token;
                    under them the training loss every N steps, where steps.jsonl has it
    perplexity      exp of each loss
    learning rate   the optimizer's lr at each evaluation
    gradients       pre-clip norm at the evaluation step, mean since the previous one,
                    fraction of steps clipped (see rnnlab.training.loop); the mean pre-clip
                    norm every N steps, where steps.jsonl has it
    samples         the text the model generated at each evaluation
    gradient flow   ||dL/dh|| (and dL/dc) by distance back in time for the run's checkpoint
                    (rnnlab.inspect.model), on windows of the run's training text
    configuration   config.json

Pictures are PNGs embedded as base64 ``data:`` URLs; a Content-Security-Policy forbids any
network request, so the page opens anywhere, offline.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from rnnlab.atomic import atomic_write_text
from rnnlab.errors import RnnlabError, RunFolderError
from rnnlab.training.folder import load_metrics
from rnnlab.training.plot import (
    EVAL_MARKERS,
    EVAL_ZORDER,
    TRAIN,
    load_steps,
    log_every,
    plot_health,
    plot_step_curve,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
       "img{max-width:100%}pre{background:#f4f4f4;padding:.6em;white-space:pre-wrap}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
       "text-align:left;font-size:90%}")
CURVES = {  # section -> [(metrics key, label)]
    "Loss (nats per token)": [("train_loss", "train (mean since last eval)"),
                              ("val_loss", "validation")],
    "Perplexity": [("train_ppl", "train"), ("val_ppl", "validation")],
    "Learning rate": [("lr", "learning rate")],
}
STEP_CURVES = {  # section -> (steps.jsonl key drawn every N steps under it, label)
    "Loss (nats per token)": ("train_loss", "train"),
}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _with_train_ppl(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        r = dict(r)
        if _number(r.get("train_loss")) and r["train_loss"] < 700:
            r["train_ppl"] = math.exp(r["train_loss"])
        out.append(r)
    return out


def curve_figure(rows: list[dict[str, Any]], title: str, series: list[tuple[str, str]],
                 steps: list[dict[str, Any]] | None = None) -> str | None:
    """One PNG (base64) of the series present in ``rows`` against step; None if none is.

    For a section of STEP_CURVES, the rows of ``steps.jsonl`` (``steps``, see
    rnnlab.training.plot.load_steps) are drawn first as a thin line under the evaluation points, and
    the series of the same key at each evaluation as markers only.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    fine_key, fine_label = STEP_CURVES.get(title, ("", ""))
    drawn = bool(steps and fine_key and plot_step_curve(ax, steps, fine_key, fine_label, TRAIN))
    for key, label in series:
        pts = [(r["step"], r[key]) for r in rows if _number(r.get(key)) and "step" in r]
        if pts:
            on_fine = drawn and key == fine_key  # markers over the per-step line
            ax.plot(*zip(*pts, strict=True), label=label, zorder=EVAL_ZORDER + on_fine,
                    **(EVAL_MARKERS if on_fine else {"marker": "."}))
            drawn = True
    if not drawn:
        return None
    if title == "Perplexity":
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def health_figure(rows: list[dict[str, Any]],
                  steps: list[dict[str, Any]] | None = None) -> str | None:
    """One PNG (base64) of the gradient norms and clipping (training.plot.plot_health), with
    the per-step norm of ``steps`` if any; None if neither ``rows`` nor ``steps`` has a norm."""
    from matplotlib.figure import Figure

    if not (any(_number(r.get("grad_norm")) or _number(r.get("grad_norm_mean")) for r in rows)
            or any(_number(r.get("grad_norm")) for r in steps or [])):
        return None
    fig = Figure(figsize=(7, 3.5))
    plot_health(fig.subplots(), rows, steps)
    fig.tight_layout()
    return _png(fig)


def gradient_flow_section(run_dir: Path, steps: int, windows: int) -> str:
    """The gradient-flow plot of the run's checkpoint, or a line saying why there is none."""
    from rnnlab.cli.inspect import checkpoint_curves
    from rnnlab.inspect.gradient_flow import gradient_flow_report, plot_gradient_flow

    try:
        curves, text = checkpoint_curves(str(run_dir), steps, windows)
    except RnnlabError as e:
        return f"<p>Not available: {html.escape(str(e))}</p>"
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_gradient_flow(curves, Path(tmp) / "flow.png",
                                 title="Gradient flow through time (checkpoint)").read_bytes()
    report = gradient_flow_report(curves)
    items = "".join(f"<li>{html.escape(k)}: decay per step {_decay(v['decay_per_step'])}</li>"
                    for k, v in report.items())
    return (f"<p>Loss at the last of {steps} steps, averaged over {windows} windows of "
            f"{html.escape(str(text))}.</p>{_img(base64.b64encode(png).decode(), 'gradient flow')}"
            f"<ul>{items}</ul>")


def _decay(d: float | None) -> str:
    return "n/a" if d is None else f"{d:.4f}"


def samples_section(rows: list[dict[str, Any]]) -> str:
    shown = [r for r in rows if isinstance(r.get("sample"), str)]
    if not shown:
        return "<p>No samples recorded (runs before samples, or --sample-length 0).</p>"
    return "".join(f"<h3>step {html.escape(str(r.get('step', '?')))}</h3>"
                   f"<pre>{html.escape(r['sample'])}</pre>" for r in shown)


def config_section(record: dict[str, Any]) -> str:
    if not record:
        return "<p>No config.json in the run folder.</p>"
    flat = {**record.get("config", {}), **{k: v for k, v in record.items() if k != "config"}}
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}"
                    "</td></tr>" for k, v in flat.items())
    return f"<table>{cells}</table>"


def _read_record(path: Path) -> dict[str, Any]:
    """config.json as shown in the report: any JSON object whose "config" (if any) is one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError included
        raise RunFolderError(f"{path} is not valid JSON ({e}): restore it") from None
    if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
        raise RunFolderError(f"{path}: expected a JSON object whose \"config\" is an object, "
                             f"got {json.dumps(record)[:60]}: restore it")
    return record


def build_report(run_dir: str | Path, *, steps: int = 50, windows: int = 8) -> str:
    """The HTML of ``run_dir``'s report (a str)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not run_dir.is_dir() or not (cfg_path.is_file() or (run_dir / "metrics.jsonl").is_file()):
        raise RunFolderError(f"{run_dir} is not a run folder (no config.json or metrics.jsonl):"
                             " pass the --out folder of an rnnlab train run")
    record = _read_record(cfg_path) if cfg_path.is_file() else {}
    rows = _with_train_ppl(load_metrics(run_dir))
    step_rows = load_steps(run_dir)
    logged = (f" Training loss logged every {log_every(step_rows)} steps ({len(step_rows)} rows of "
              "steps.jsonl)." if step_rows else "")
    parts = [f"<h1>Training report: {html.escape(str(run_dir))}</h1>",
             f"<p>{len(rows)} evaluations recorded.{logged}</p>"]
    for title, series in CURVES.items():
        b64 = curve_figure(rows, title, series, step_rows)
        if b64:
            parts.append(f"<h2>{html.escape(title)}</h2>{_img(b64, title)}")
    health = health_figure(rows, step_rows)
    if health:
        parts.append(f"<h2>Gradient norms and clipping</h2>{_img(health, 'gradients')}")
    parts += ["<h2>Samples at each evaluation</h2>", samples_section(rows),
              "<h2>Gradient flow through time</h2>",
              gradient_flow_section(run_dir, steps, windows),
              "<h2>Configuration</h2>", config_section(record)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>rnnlab report: {html.escape(run_dir.name)}</title><style>{CSS}</style>"
            f"</head><body>\n{chr(10).join(parts)}\n</body></html>\n")


def cmd_report(args: argparse.Namespace) -> int:
    """``rnnlab report RUN``: write ``RUN/report.html``."""
    page = build_report(args.run, steps=args.steps, windows=args.windows)
    out = Path(args.run) / "report.html"
    atomic_write_text(out, page)
    print(f"wrote {out}", file=sys.stderr)
    return 0

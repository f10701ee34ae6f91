"""The training loss and gradient norm every N steps (``steps.jsonl``) in ``loss.png``
(rnnlab.training.plot) and in the HTML report (rnnlab.cli.report), under the evaluation
points; run folders without ``steps.jsonl`` drawn as before."""

import base64
import json
import math
import re

import numpy as np
import pytest

from rnnlab.cli.report import build_report
from rnnlab.training.plot import load_steps, log_every, loss_figure, plot_losses

PNG = b"\x89PNG\r\n\x1a\n"
EVALS = (75, 150, 225, 300)


def step_rows(every=10, last=300):
    """steps.jsonl rows every ``every`` steps: a noisy decreasing loss, a noisy norm."""
    rng = np.random.default_rng(0)
    return [{"step": s, "epoch": s / 880, "train_loss": 4.2 - s / 150 + 0.1 * rng.normal(),
             "grad_norm": float(np.exp(0.5 + 0.2 * rng.normal())), "lr": 0.002}
            for s in range(every, last + 1, every)]


def metrics_rows():
    """One metrics.jsonl row per evaluation, with the keys rnnlab.train writes, its means
    (nearly) those of the step rows since the previous evaluation."""
    rows, start = [], 0
    for i, s in enumerate(EVALS):
        window = [r for r in step_rows() if start < r["step"] <= s]
        start = s
        rows.append({"step": s, "epoch": s / 880, "lr": 0.002,
                     "train_loss": float(np.mean([r["train_loss"] for r in window])),
                     "val_loss": 4.3 - s / 160, "val_ppl": math.exp(4.3 - s / 160),
                     "grad_norm": window[-1]["grad_norm"],
                     "grad_norm_mean": float(np.mean([r["grad_norm"] for r in window])),
                     "clipped_frac": 0.4 - i / 10, "tokens_per_s": 2000.0, "elapsed_s": s / 5})
    return rows


def write_run(path, steps=None, extra_lines=()):
    """A run folder: config.json, metrics.jsonl, and steps.jsonl if ``steps`` is given (its
    rows, then ``extra_lines`` verbatim)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"config": {"hidden": 32}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics_rows()))
    if steps is not None:
        lines = [json.dumps(r) for r in steps] + list(extra_lines)
        (path / "steps.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


def lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.lines}


def test_load_steps_returns_the_rows(tmp_path):
    run = write_run(tmp_path / "run", step_rows())
    assert load_steps(run) == step_rows()
    assert log_every(load_steps(run)) == 10


def test_load_steps_of_an_old_run_is_empty(tmp_path):
    assert load_steps(write_run(tmp_path / "run")) == []


@pytest.mark.parametrize("bad", [
    '{"step": 310, "train_loss": 1.',  # a run killed mid-write
    "not json", "[1, 2]", "null", '"a string"', "1" * 5000,
    '{"train_loss": 1.0}', '{"step": "310", "train_loss": 1.0}', '{"step": true, "train_loss": 1}',
    '{"step": NaN, "train_loss": 1.0}', '{"step": 310}', '{"step": 310, "train_loss": "1.0"}',
    '{"step": 310, "train_loss": [1.0]}', "[" * 100_000,
])
def test_damaged_lines_are_skipped_and_the_plots_still_draw(tmp_path, bad):
    rows = step_rows()
    run = write_run(tmp_path / "run", rows[:10], [bad, *map(json.dumps, rows[10:])])
    assert load_steps(run) == rows
    assert plot_losses(run).read_bytes()[:8] == PNG
    assert "every 10 steps" in build_report(run)


def test_a_diverged_loss_written_as_null_is_a_gap_not_a_skipped_row(tmp_path):
    rows = step_rows()
    rows[5] = {**rows[5], "train_loss": None, "train_loss_note": "inf", "grad_norm": None}
    run = write_run(tmp_path / "run", rows)
    assert load_steps(run) == rows
    line = lines_by_gid(loss_figure(run).axes[0])["steps:train_loss"]
    assert math.isnan(line.get_ydata()[5]) and len(line.get_xdata()) == len(rows)
    assert plot_losses(run).read_bytes()[:8] == PNG


def test_a_resumed_run_replaces_the_killed_run_s_tail(tmp_path):
    first, again = step_rows(last=250), step_rows(last=300)[19:]  # killed at 250, resumed at 200
    run = write_run(tmp_path / "run", first + again)
    assert [r["step"] for r in load_steps(run)] == list(range(10, 301, 10))
    assert load_steps(run)[19:] == again


def test_an_unreadable_steps_file_reads_as_absent(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "steps.jsonl").mkdir()
    assert load_steps(run) == []
    assert plot_losses(run).read_bytes()[:8] == PNG


def test_loss_png_draws_the_per_step_curves_under_the_evaluation_points(tmp_path):
    rows = step_rows()
    run = write_run(tmp_path / "run", rows)
    assert plot_losses(run).read_bytes()[:8] == PNG
    loss_ax, health_ax = loss_figure(run).axes[:2]
    fine = lines_by_gid(loss_ax)["steps:train_loss"]
    np.testing.assert_array_equal(fine.get_xdata(), [r["step"] for r in rows])
    np.testing.assert_array_equal(fine.get_ydata(), [r["train_loss"] for r in rows])
    assert fine.get_label() == "train (every 10 steps)" and fine.get_alpha() == 0.6
    evals = [line for line in loss_ax.lines if line is not fine]
    assert [list(line.get_xdata()) for line in evals] == [list(EVALS)] * 2
    assert all(line.get_zorder() > fine.get_zorder() for line in evals)
    assert evals[0].get_linestyle() == "None" and evals[0].get_marker() == "s"  # markers only
    labels = loss_ax.get_legend_handles_labels()[1]
    assert labels == ["train (every 10 steps)", "train (mean since last eval)", "validation"]
    norm = lines_by_gid(health_ax)["steps:grad_norm"]
    np.testing.assert_array_equal(norm.get_ydata(), [r["grad_norm"] for r in rows])
    assert norm.get_zorder() < min(line.get_zorder() for line in health_ax.lines
                                   if line is not norm)


def test_loss_png_without_steps_jsonl_is_drawn_as_before(tmp_path):
    run = write_run(tmp_path / "run")
    assert plot_losses(run).read_bytes()[:8] == PNG
    loss_ax, health_ax = loss_figure(run).axes[:2]
    assert [line.get_label() for line in loss_ax.lines] == ["train (mean since last eval)",
                                                             "validation"]
    assert all(not str(line.get_gid()).startswith("steps:")
               for ax in (loss_ax, health_ax) for line in ax.lines)
    assert loss_ax.lines[0].get_linestyle() == "-"  # the evaluation-time train loss: a line
    assert len(health_ax.lines) == 2


def report_loss_png(page):
    """The decoded PNG of the report's loss section."""
    m = re.search(r'<h2>Loss \(nats per token\)</h2><img alt="[^"]*" '
                  r'src="data:image/png;base64,([^"]+)"', page)
    assert m
    return base64.b64decode(m.group(1))


def test_the_report_draws_the_per_step_curve_when_there_is_one(tmp_path, monkeypatch):
    import rnnlab.cli.report as report

    drawn = []
    real = report.plot_step_curve

    def spy(ax, steps, key, label, color):
        drawn.append((key, len(steps)))
        return real(ax, steps, key, label, color)

    monkeypatch.setattr(report, "plot_step_curve", spy)
    old = build_report(write_run(tmp_path / "old"))
    assert drawn == [] and "every 10 steps" not in old
    new = build_report(write_run(tmp_path / "new", step_rows()))
    assert drawn == [("train_loss", 30)]
    assert "Training loss logged every 10 steps (30 rows of steps.jsonl)." in new
    assert report_loss_png(new)[:8] == PNG and report_loss_png(new) != report_loss_png(old)


def test_the_report_health_figure_has_the_per_step_norm(tmp_path, monkeypatch):
    import rnnlab.cli.report as report

    health = []
    monkeypatch.setattr(report, "plot_health", lambda ax, rows, steps=None:
                        health.append(steps))
    build_report(write_run(tmp_path / "run", step_rows()))
    assert health == [step_rows()]


def test_a_run_stopped_before_its_first_evaluation_shows_its_steps(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in step_rows()[:3]))
    page = build_report(run)
    assert "0 evaluations recorded." in page and report_loss_png(page)[:8] == PNG

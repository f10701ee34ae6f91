"""benchmarks/quality.py --quick: both sides of each time-to-quality pair run and learn.

A quick run's timings and metrics mean nothing as results (100 steps of PTB, 9 s of
tiny-shakespeare); what is asserted is that each side ran and wrote finite metrics, validated
where it stopped, and that on PTB the two sides, the same recipe from different random
weights, learned about as much: after the same 100 SGD steps their validation perplexities are
far below the vocabulary's 10,000 (uniform guessing) and within 25% of each other (measured
here: 1,047 and 1,017). One thread per side, so that a loaded machine does not stall PyTorch's
spinning threads. The PyTorch side's lr schedule is checked against rnnlab's own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_env import src_first_env

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"


def run_quick(pair: str, out: Path, *extra: str) -> tuple[dict, str]:
    env = src_first_env()
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "quality.py"), pair, "--quick",
         "--threads", "1", "--out", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / f"{pair}.json").read_text())
    assert [s["side"] for s in data["sides"]] == ["rnnlab", "torch"]
    for s in data["sides"]:
        assert math.isfinite(s["metric"]), s["side"]
        assert s["train_wall_s"] > 0 and s["tokens"] > 0 and s["tokens_per_s"] > 0, s["side"]
        assert s["evals"][-1]["step"] == s["steps"], s["side"]  # validated where it stopped
        assert f"| {s['side']} |" in result.stdout
    return data, result.stdout


@pytest.mark.skipif(not PTB.is_dir(), reason="no PTB data in ../shared/data/ptb")
def test_quick_ptb_small_both_sides_learn_alike(tmp_path):
    data, stdout = run_quick("ptb-small", tmp_path, "--data", str(PTB))
    rnnlab, torch = data["sides"]
    assert rnnlab["steps"] == torch["steps"] == 100
    assert torch["vocab"] == 10000
    ppl = [rnnlab["first_val_ppl"], torch["first_val_ppl"]]
    assert max(ppl) < 2000, ppl  # uniform guessing: 10,000
    assert max(ppl) / min(ppl) <= 1.25, ppl
    for s in (rnnlab, torch):
        assert 1 < s["test_ppl"] < 2000, s["side"]
    assert rnnlab["eval_wall_s"] > 0
    assert "wall time rnnlab / torch" in stdout


def test_quick_shakespeare_both_sides_validate_at_the_budget(tmp_path):
    data, stdout = run_quick("shakespeare", tmp_path)
    assert data["minutes"] == pytest.approx(0.15)
    for s in data["sides"]:
        assert s["best_val_loss"] == min(e["val_loss"] for e in s["evals"])
    assert "lower:" in stdout


def test_torch_side_halves_the_lr_as_rnnlabs_zaremba_schedule(tmp_path):
    """quality_torch.py's epoch loop against rnnlab's Schedule: the same lr in every epoch."""
    import importlib.util
    from types import SimpleNamespace

    import torch

    from rnnlab.optim.schedule import Schedule

    spec = importlib.util.spec_from_file_location("quality_torch",
                                                  ROOT / "benchmarks" / "quality_torch.py")
    assert spec is not None and spec.loader is not None
    qt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qt)
    torch.manual_seed(0)
    model = qt.LM(7, 4, 4, 2, 0.0)
    trainer = qt.Trainer(model, torch.optim.SGD(model.parameters(), lr=20.0), 0.25, 5,
                         math.inf, None)
    ids = torch.randint(0, 7, (200,))
    out = trainer.train(qt.batchify(ids, 4), qt.batchify(ids[:60], 2), 7, (4, 0.5))
    opt = SimpleNamespace(lr=20.0)
    schedule = Schedule("zaremba", opt, lr_decay=0.5, decay_after=4)
    expected = []
    for epochs_done, row in enumerate(out["evals"], start=1):
        expected.append(opt.lr)
        schedule.epoch_end(epochs_done, row["val_loss"])
    assert [row["lr"] for row in out["evals"]] == expected == [20, 20, 20, 20, 10, 5, 2.5]
    assert [row["epoch"] for row in out["evals"]] == list(range(1, 8))
    assert out["steps"] == 7 * 10 and out["tokens"] == 7 * 49 * 4  # 50 rows: 49 inputs
    assert out["best_val_loss"] == min(row["val_loss"] for row in out["evals"])

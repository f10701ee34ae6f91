"""Learning-rate schedules (rnnlab.optim.schedule) and the share of a run behind
(rnnlab.training.loop.run_fraction), which ``cosine`` anneals over."""

import json
import math

import pytest

from rnnlab.data import bundled_corpus
from rnnlab.optim.schedule import Schedule
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.training import Run, TrainConfig, train
from rnnlab.training.loop import run_fraction
from rnnlab.training.progress import Progress


class Opt:
    def __init__(self, lr):
        self.lr = lr


def schedule(kind, lr=2e-3):
    return Schedule(kind, Opt(lr), lr_decay=0.5, decay_after=2)


def test_zaremba_holds_then_decays_each_epoch():
    s = schedule("zaremba", lr=1.0)
    lrs = []
    for epoch in range(1, 6):
        s.epoch_end(epoch, val_loss=5.0 - epoch)
        lrs.append(s.optimizer.lr)
    assert lrs == [1.0, 0.5, 0.25, 0.125, 0.0625]


def test_plateau_decays_only_when_validation_fails_to_improve():
    s = schedule("plateau", lr=1.0)
    for epoch, val in enumerate([3.0, 2.5, 2.6, 2.4, 2.4], start=1):
        s.epoch_end(epoch, val)
    assert s.optimizer.lr == 0.25 and s.best == 2.4


@pytest.mark.parametrize("done, factor", [(0.0, 1.0), (0.25, (1 + 0.5**0.5) / 2), (0.5, 0.5),
                                          (0.75, (1 - 0.5**0.5) / 2), (1.0, 0.0), (1.5, 0.0)])
def test_cosine_anneals_from_lr_to_zero(done, factor):
    s = schedule("cosine")
    s.step_begin(done)
    assert s.optimizer.lr == pytest.approx(2e-3 * factor, abs=1e-15)
    s.epoch_end(1, 1.0)  # epochs change nothing
    assert s.optimizer.lr == pytest.approx(2e-3 * factor, abs=1e-15)


@pytest.mark.parametrize("kind", ["constant", "zaremba", "plateau"])
def test_only_cosine_changes_the_lr_per_step(kind):
    s = schedule(kind)
    s.step_begin(0.7)
    assert s.optimizer.lr == 2e-3


def test_cosine_starts_from_the_configured_lr_not_the_optimizer_s():
    """A resumed run's optimizer holds the annealed lr; the schedule anneals from --lr."""
    s = Schedule("cosine", Opt(1e-5), lr_decay=0.5, decay_after=2, lr=2e-3)
    s.step_begin(0.5)
    assert s.optimizer.lr == pytest.approx(1e-3)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule("linear")


@pytest.mark.parametrize("limits, prog, want", [
    ({"epochs": 4}, {"epoch": 1, "batch": 50}, 0.375),  # 1.5 of 4 epochs
    ({"epochs": 4, "max_steps": 100}, {"epoch": 1, "step": 60}, 0.6),
    ({"epochs": 4, "time_budget": 60.0}, {"epoch": 2, "elapsed_s": 15.0}, 0.5),
    ({"epochs": 4, "max_steps": 10, "time_budget": 60.0}, {"step": 12, "elapsed_s": 1.0}, 1.0),
])
def test_run_fraction_is_the_largest_share_of_any_limit(limits, prog, want):
    cfg = TrainConfig(**{"time_budget": None, **limits})
    assert run_fraction(cfg, Progress(**prog), batches=100) == pytest.approx(want)


def test_a_cosine_run_logs_the_annealed_lr_every_step(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(bundled_corpus().read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), hidden=16, embed=8, layers=1,
                      batch_size=8, bptt=16, eval_batch_size=8, time_budget=None, max_steps=20,
                      eval_every=0, log_every=1, schedule="cosine", lr=1e-2, sample_length=0)
    run = Run.create(cfg, LanguageModelTask)
    train(run, progress_bar=False)
    run.close()
    rows = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").open()]
    assert [r["step"] for r in rows] == list(range(1, 21))
    for r in rows:  # the lr of step s is set before it, with s - 1 steps behind
        assert r["lr"] == pytest.approx(1e-2 * (1 + math.cos(math.pi * (r["step"] - 1) / 20)) / 2)

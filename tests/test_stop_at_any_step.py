"""A signal may come during any step: one where an evaluation is due, one between
evaluations, the last of an epoch. Wherever it comes, the stopped run resumed is the run
that was never stopped: the same checkpoint, the same ``metrics.jsonl`` and ``steps.jsonl``
rows (a run stopped at an evaluation step evaluates before it stops, since the resumed run
starts after that step). In one process, the signal set by the feed at an exact step."""

import json
import signal

import numpy as np
import pytest

from rnnlab.data import bundled_corpus
from rnnlab.tasks import TASK_TYPES, LanguageModelTask
from rnnlab.training import Run, TrainConfig, checkpoint, train
from rnnlab.training.signals import StopRequests

EVAL_EVERY, STEPS = 4, 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_text(bundled_corpus().read_text(encoding="utf-8")[:3_000], encoding="utf-8")
    return path


def config(corpus, out):
    return TrainConfig(data=str(corpus), out=str(out), hidden=8, embed=4, layers=1,
                       batch_size=16, bptt=8, eval_batch_size=4, max_steps=STEPS,
                       eval_every=EVAL_EVERY, log_every=1, dropout=0.1, dtype="float64",
                       sample_length=10, time_budget=3600)


def rows(run, name):
    """The rows of a log, timings removed (they differ run to run)."""
    return [{k: v for k, v in json.loads(r).items() if k not in ("elapsed_s", "tokens_per_s")}
            for r in (run / name).read_text().splitlines()]


def stop_during(run, at):
    """A StopRequests that records SIGTERM while step ``at`` runs (1-based)."""
    stop, step = StopRequests(), run.feed.step

    def signalled_step(model, i):
        out = step(model, i)
        if run.progress.step + 1 == at:
            stop.signal = signal.SIGTERM
        return out

    run.feed.step = signalled_step
    return stop


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    with Run.create(config(corpus, out), LanguageModelTask) as run:
        assert train(run, progress_bar=False) is None
        epoch = len(run.feed)
    assert EVAL_EVERY < epoch < STEPS - 1 and epoch % EVAL_EVERY, epoch  # three kinds of step
    return out, epoch


@pytest.mark.parametrize("kind", ["evaluation", "between", "epoch end"])
def test_a_signal_at_any_step_resumes_to_the_uninterrupted_run(corpus, uninterrupted,
                                                               tmp_path, kind):
    full, epoch = uninterrupted
    at = {"evaluation": EVAL_EVERY, "between": EVAL_EVERY + 1, "epoch end": epoch}[kind]
    out = tmp_path / "run"
    with Run.create(config(corpus, out), LanguageModelTask) as run:
        assert train(run, progress_bar=False, stop=stop_during(run, at)) == signal.SIGTERM
    assert checkpoint.load(out, "last")[1]["progress"]["step"] == at
    with Run.resume(out, TASK_TYPES) as run:
        assert train(run, progress_bar=False) is None
    want, _ = checkpoint.load(full, "last")
    got, meta = checkpoint.load(out, "last")
    assert meta["progress"]["step"] == STEPS
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert rows(out, "metrics.jsonl") == rows(full, "metrics.jsonl")
    assert rows(out, "steps.jsonl") == rows(full, "steps.jsonl")

"""Evaluation sharded over ranks (``SequenceTask.evaluate`` on K ranks): each rank predicts
its contiguous share of the validation examples, the predictions are gathered in rank order
and scored once. Shown here in one process for every task: scoring the shares' predictions
joined (one share empty, as on a rank left without an example) gives the whole set's
metrics. tests/test_mpi.py runs the real thing on two ranks."""

import pytest
from mpi_helpers import write_data

from rnnlab.tasks import TASK_TYPES
from rnnlab.tasks.base import LossSum
from rnnlab.training import Run, TrainConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    write_data(d)
    return d


@pytest.mark.parametrize("task,name,extra", [
    ("classify", "cls", {"pooling": "mean"}), ("tag", "tag", {"level": "word"}),
    ("seq2seq", "s2s", {"attention": "dot"})])
def test_the_shares_predictions_scored_together_are_the_whole_sets(data, tmp_path, task,
                                                                    name, extra):
    cfg = TrainConfig(task=task, data=str(data / f"{name}.train"),
                      val_data=str(data / f"{name}.val"), out=str(tmp_path / "run"),
                      hidden=12, embed=8, layers=1, dtype="float64", **extra)
    with Run.create(cfg, TASK_TYPES[task]) as run:
        kind, model, val = run.task, run.model, run.feed.val
        model.eval()
        whole = kind.evaluate(model, val, 4)
        pred, total, count = [], 0.0, 0
        for a, b in ((0, 0), (0, 4), (4, len(val))):  # the first share is empty
            p, loss = kind.infer_share(model, val, a, b, 4)
            pred += p
            total, count = total + loss.total, count + loss.count
        joined = kind.score(val, pred, LossSum(total, count))
    assert whole.keys() == joined.keys() and len(val) == 9
    for k, v in whole.items():
        if isinstance(v, float):
            assert joined[k] == pytest.approx(v, rel=1e-12), k
        else:
            assert joined[k] == v, k
    assert whole["loss"] > 0

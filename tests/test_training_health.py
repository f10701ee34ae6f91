"""Training health and samples in metrics.jsonl; exact resume with them; the RNN's
nonlinearity and the LSTM's forget bias as run options."""

import json
import math

import numpy as np
import pytest

from rnnlab.data import bundled_corpus
from rnnlab.errors import UsageError
from rnnlab.models import LanguageModel
from rnnlab.tasks import TASK_TYPES
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.training import Run, TrainConfig, checkpoint, train


def create(cfg):
    """A new language-model run (closed by the process's end, or by ``close``)."""
    return Run.create(cfg, LanguageModelTask)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shakespeare.txt"
    path.write_text(bundled_corpus().read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    return path


def config(data, out, **kw):
    base = {"data": str(data), "out": str(out), "hidden": 32, "embed": 8, "layers": 1,
            "batch_size": 8, "bptt": 16, "eval_batch_size": 8, "time_budget": None,
            "max_steps": 30, "eval_every": 10, "lr": 1e-2, "dropout": 0.0,
            "sample_length": 40}
    base.update(kw)
    return TrainConfig(**base)


def rows(run_dir):
    return [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_rows_carry_gradient_health_and_a_sample(corpus, tmp_path):
    run = create(config(corpus, tmp_path / "run", clip=0.5))
    norms = []
    real = run.optimizer.step

    def step():  # the pre-clip norm of every step, from the same numbers the loop sees
        norms.append(float(np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum())
                                       for p in run.model.named_params().values()))))
        real()

    run.optimizer.step = step
    train(run, progress_bar=False)
    got = rows(tmp_path / "run")
    assert [r["step"] for r in got] == [10, 20, 30]
    for i, r in enumerate(got):
        window = norms[10 * i:10 * (i + 1)]  # clipped grads: norm <= 0.5 after clipping
        assert 0.0 <= r["clipped_frac"] <= 1.0
        assert r["grad_norm_mean"] > 0
        assert r["clipped_frac"] == pytest.approx(np.mean([n > 0.5 - 1e-6 for n in window]))
        assert isinstance(r["sample"], str) and len(r["sample"]) == 40
    assert any(r["clipped_frac"] > 0 for r in got)
    assert (tmp_path / "run" / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_without_clipping_nothing_is_clipped_and_the_mean_is_the_mean(corpus, tmp_path):
    run = create(config(corpus, tmp_path / "run", clip=0.0, max_steps=10, sample_length=0))
    train(run, progress_bar=False)
    (r,) = rows(tmp_path / "run")
    assert r["clipped_frac"] == 0.0 and "sample" not in r
    assert math.isfinite(r["grad_norm_mean"]) and r["grad_norm_mean"] > 0


def test_resume_is_exact_with_samples_recorded(corpus, tmp_path):
    kw = {"dropout": 0.3, "layers": 2, "max_steps": 40}
    full = create(config(corpus, tmp_path / "full", **kw))
    train(full, progress_bar=False)
    part = create(config(corpus, tmp_path / "part", **{**kw, "max_steps": 20}))
    train(part, progress_bar=False)
    part.close()
    resumed = Run.resume(tmp_path / "part", TASK_TYPES)
    resumed.config.max_steps = 40
    train(resumed, progress_bar=False)
    a, _ = checkpoint.load(tmp_path / "full", "last")
    b, _ = checkpoint.load(tmp_path / "part", "last")
    for k in a:
        if k.startswith("model/"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    want, got = rows(tmp_path / "full"), rows(tmp_path / "part")
    assert [r["sample"] for r in got] == [r["sample"] for r in want]
    for key in ("grad_norm", "grad_norm_mean", "clipped_frac", "train_loss"):
        assert [r[key] for r in got] == [r[key] for r in want], key


def test_samples_leave_training_untouched(corpus, tmp_path):
    a = create(config(corpus, tmp_path / "a", dropout=0.2, max_steps=20))
    b = create(config(corpus, tmp_path / "b", dropout=0.2, max_steps=20, sample_length=0))
    train(a, progress_bar=False)
    train(b, progress_bar=False)
    for (n, p), (_, q) in zip(a.model.named_params().items(), b.model.named_params().items(),
                              strict=True):
        np.testing.assert_array_equal(p.value, q.value, err_msg=n)


def test_nonlinearity_and_forget_bias_reach_the_model_and_its_checkpoint(corpus, tmp_path):
    run = create(config(corpus, tmp_path / "rnn", cell="rnn", nonlinearity="relu",
                            max_steps=5, eval_every=0))
    assert run.model.rnn.nonlinearity == "relu"
    run = create(config(corpus, tmp_path / "lstm", forget_bias=1.0, init_range=0.1,
                            max_steps=5, eval_every=0))
    b = run.model.named_params()
    f = slice(32, 64)  # the f block of [i f g o], H = 32
    total = b["rnn.bias_ih_l0"].value[f] + b["rnn.bias_hh_l0"].value[f]
    np.testing.assert_array_equal(total, 1.0)  # applied after the init_range draw
    train(run, progress_bar=False)
    _, meta = checkpoint.load(tmp_path / "lstm", "last")
    assert meta["model"]["forget_bias"] == 1.0
    again = LanguageModel.from_config(meta["model"], rng=np.random.default_rng(0))
    assert again.forget_bias == 1.0


def test_a_run_saved_before_the_options_loads_with_tanh():
    old = {"vocab_size": 10, "cell": "rnn", "embed_size": 4, "hidden_size": 4,
           "num_layers": 1, "dropout": 0.0, "tie_weights": False, "init_range": None,
           "dtype": "float32"}
    model = LanguageModel.from_config(old, rng=np.random.default_rng(0))
    assert model.rnn.nonlinearity == "tanh" and model.forget_bias is None
    cfg = TrainConfig.from_json({k: v for k, v in TrainConfig().to_json().items()
                                 if k not in ("nonlinearity", "forget_bias")})
    assert cfg.nonlinearity == "tanh" and cfg.forget_bias is None


@pytest.mark.parametrize(("kw", "words"), [({"cell": "lstm", "nonlinearity": "relu"},
                                             "--cell rnn only"),
                                            ({"cell": "gru", "forget_bias": 1.0},
                                             "--cell lstm only")])
def test_options_of_another_cell_are_refused(kw, words):
    with pytest.raises(UsageError, match=words):
        TrainConfig(**kw).check()
    with pytest.raises(ValueError, match="only"):
        LanguageModel(10, **{"cell": kw["cell"]}, **{k: v for k, v in kw.items()
                                                     if k != "cell"},
                      rng=np.random.default_rng(0))

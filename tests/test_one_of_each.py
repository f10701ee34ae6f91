"""The single implementations that replaced their copies: atomic writes, the gradient norm,
the evaluation loop."""

import os

import numpy as np
import pytest

from rnnlab.atomic import atomic_open, atomic_write_text
from rnnlab.data import BPTTBatches
from rnnlab.models import LanguageModel
from rnnlab.nn import Parameter
from rnnlab.optim import clip_grad_norm, grad_norm
from rnnlab.tasks.lm import evaluate_loss


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["config.json"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "loss.png"
    monkeypatch.setattr(os, "replace", lambda src, dst: 1 / 0)
    with pytest.raises(ZeroDivisionError), atomic_open(target, "wb") as f:
        f.write(b"\x89PNG")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_norm_is_the_float64_norm(dtype):
    rng = np.random.default_rng(0)
    params = [Parameter(np.zeros(shape, dtype=dtype)) for shape in [(300, 70), (5,), (9000,)]]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    exact = np.sqrt(sum(np.sum(np.square(p.grad, dtype=np.float64)) for p in params))
    assert grad_norm(params) == pytest.approx(exact, rel=1e-7)
    assert clip_grad_norm(params, 1e9) == grad_norm(params)


def test_grad_norm_of_float32_gradients_too_large_to_square_in_float32():
    p = Parameter(np.zeros(10, dtype=np.float32))
    p.grad[...] = 1e20  # each square overflows float32; the float64 norm is finite
    assert grad_norm([p]) == pytest.approx(np.sqrt(10) * 1e20, rel=1e-6)
    p.grad[3] = np.inf
    assert grad_norm([p]) == np.inf


@pytest.mark.parametrize("batch_size", [1, 4])
def test_evaluate_loss_matches_a_loop_over_the_windows(batch_size):
    model = LanguageModel(7, embed_size=4, hidden_size=6, dropout=0.5,
                          rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 7, size=203)
    loss, count = evaluate_loss(model, ids, batch_size=batch_size, bptt=10)
    assert model.training  # its mode is restored
    model.eval()
    losses, state = [], None
    for x, y in BPTTBatches(ids, batch_size, 10):
        step, state = model.loss(x, y, state)
        losses.append(step * y.size)
    assert count == BPTTBatches(ids, batch_size, 10).tokens_per_epoch
    assert loss == pytest.approx(sum(losses) / count, rel=1e-6)

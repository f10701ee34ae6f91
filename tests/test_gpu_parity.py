"""The GPU against the CPU: every layer and model, and a language model trained 50 steps.

Each test runs on two devices: "fake" (always: the CuPy stand-in of tests/fake_cupy.py, so
the comparisons themselves are exercised on any machine) and "cuda" (marked ``gpu``,
skipped with the reason without CuPy or a GPU: ``pytest -m gpu`` runs these alone). A
tensor agrees when ||device - cpu|| / ||cpu|| is within TOL of its dtype; the device
layers use their fused CUDA steps where the cells have them.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from device_cases import CASES, compare
from fake_cupy import make_fake_cupy
from gpu_helpers import needs_gpu

from rnnlab.device import to_host
from rnnlab.models import LanguageModel
from rnnlab.optim import SGD, Adam, clip_grad_norm

TOL = {np.float64: 1e-10, np.float32: 1e-4}
TRAINED_TOL = {("sgd", np.float64): 1e-9, ("sgd", np.float32): 1e-4,
               ("adam", np.float64): 1e-3, ("adam", np.float32): 1e-3}
DISCRETE = ("predict", "sample", "greedy.tokens", "beam.tokens")  # ids: compared in float64
DEVICES = ["fake", pytest.param("cuda", marks=[pytest.mark.gpu, needs_gpu])]


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """The device spec to test on: "cuda", backed by the fake CuPy for "fake"."""
    if request.param == "fake":
        monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy(1))
    return "cuda"


def within(errors: dict[str, float], tol: float) -> dict[str, float]:
    """The tensors whose relative error exceeds tol (empty: all agree)."""
    return {name: e for name, e in errors.items() if not e <= tol}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_and_model_parity(case, dtype, device):
    want = CASES[case]("cpu", dtype)
    got = CASES[case](device, dtype)
    if dtype == np.float32:  # a near tie may flip an argmax or a draw in float32
        want = {k: v for k, v in want.items() if not k.startswith(DISCRETE)}
        got = {k: v for k, v in got.items() if not k.startswith(DISCRETE)}
    assert not within(compare(got, want), TOL[dtype])


def train_lm(device: str, dtype, optimizer: str, steps: int = 50) -> dict[str, np.ndarray]:
    """A 2-layer LSTM language model with dropout trained ``steps`` steps from seed 0 on a
    fixed token stream, state carried; returns its weights on the host."""
    model = LanguageModel(50, embed_size=32, hidden_size=32, num_layers=2, dropout=0.2,
                          dtype=dtype, device=device, rng=np.random.default_rng(0))
    opt = SGD(model.named_params(), lr=0.5) if optimizer == "sgd" else \
        Adam(model.named_params(), lr=1e-3)
    stream = np.random.default_rng(1).integers(0, 50, (steps + 1) * 10 * 8)
    windows = stream.reshape(-1, 8)  # (., B)
    state = None
    for i in range(steps):
        x, y = windows[i * 10:(i + 1) * 10], windows[i * 10 + 1:(i + 1) * 10 + 1]
        model.zero_grad()
        _, state = model.loss(x, y, state)
        model.backward_loss()
        clip_grad_norm(model.named_params(), 5.0)
        opt.step()
    return {n: to_host(p.value) for n, p in model.named_params().items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_50_steps_of_training(optimizer, dtype, device):
    want = train_lm("cpu", dtype, optimizer)
    got = train_lm(device, dtype, optimizer)
    assert not within(compare(got, want), TRAINED_TOL[(optimizer, dtype)])

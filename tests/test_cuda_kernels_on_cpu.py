"""The fused CUDA cell kernels, checked on the CPU (g++) and compiled for the GPU (nvcc).

1. Arithmetic: each cell's ``_step_forward_cuda`` / ``_step_backward_cuda`` runs here with
   its kernels built by g++ on an emulated grid (``cuda_host.py``), on NumPy buffers; a whole
   forward and backward through the fused steps must equal the NumPy steps' (outputs, final
   states, input, initial-state and every parameter gradient) to a relative 1e-12 in float64
   and 1e-5 in float32, for every cell and option: peepholes, no bias, lengths, truncation,
   bidirectional, two layers, cell outputs. The kernels must be the ones that ran (counted).
   A language model (its embedding looked up into layer 0 or not, dropout, a carried
   state) trains the same two SGD steps; the embedding's segment-sum kernel adds each id's
   rows in order.
2. Compilation: every kernel source compiles with ``nvcc -arch=sm_90 -cubin``.
Each part skips, with the reason, where its compiler is missing.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from cuda_host import GXX, NVCC, HostCompiler, kernels_of, nvcc_cubin

from rnnlab import GRU, LSTM, RNN
from rnnlab.models import LanguageModel
from rnnlab.nn import _cuda
from rnnlab.nn.embedding import ONE_HOT_MAX, SEGMENT_SUM_CUDA, add_rows_at
from rnnlab.optim import SGD

T, N, D, H = 5, 3, 4, 6
TOL = {np.float64: 1e-12, np.float32: 1e-5}
CELLS = {
    "rnn_tanh": lambda dt, rng, **kw: RNN(D, H, 2, dtype=dt, rng=rng, **kw),
    "rnn_relu": lambda dt, rng, **kw: RNN(D, H, 2, nonlinearity="relu", dtype=dt, rng=rng, **kw),
    "lstm": lambda dt, rng, **kw: LSTM(D, H, 2, dtype=dt, rng=rng, **kw),
    "lstm_peephole": lambda dt, rng, **kw: LSTM(D, H, 2, peephole=True, dtype=dt, rng=rng, **kw),
    "lstm_forget_bias": lambda dt, rng, **kw: LSTM(D, H, 2, forget_bias=1.0, dtype=dt, rng=rng,
                                                   **kw),
    "gru": lambda dt, rng, **kw: GRU(D, H, 2, dtype=dt, rng=rng, **kw),
    "gru_nobias": lambda dt, rng, **kw: GRU(D, H, 2, bias=False, dtype=dt, rng=rng, **kw),
}
SOURCES = [(LSTM.FORWARD_CUDA, "lstm"), (LSTM.BACKWARD_CUDA, "lstm"),
           (GRU.FORWARD_CUDA, "gru"), (GRU.BACKWARD_CUDA, "gru"),
           (RNN.FORWARD_CUDA, "rnn"), (RNN.BACKWARD_CUDA, "rnn"),
           (SEGMENT_SUM_CUDA, "segment")]

needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed: the kernels' "
                               "arithmetic cannot be checked on the CPU")


@pytest.fixture
def host(monkeypatch, tmp_path_factory):
    """Kernels built by g++ instead of CuPy's NVRTC, and an empty compile cache."""
    compiler = HostCompiler(tmp_path_factory.getbasetemp())
    monkeypatch.setattr(_cuda, "compile_kernel", compiler)
    monkeypatch.setattr(_cuda, "_KERNELS", {})
    return compiler


def fused(layer):
    """The layer with its per-step hooks swapped for the fused ones (as on a CUDA device)."""
    layer._step_forward = layer._step_forward_cuda
    layer._step_backward = layer._step_backward_cuda
    return layer


def run(layer, x, state, lengths, truncate, cells):
    y, final = layer(x, state, lengths, return_cells=cells)
    rng = np.random.default_rng(7)
    dy = (tuple(rng.standard_normal(a.shape).astype(layer.dtype) for a in y) if cells
          else rng.standard_normal(y.shape).astype(layer.dtype))
    dfinal = (tuple(rng.standard_normal(s.shape).astype(layer.dtype) for s in final)
              if isinstance(final, tuple) else rng.standard_normal(final.shape).astype(layer.dtype))
    dx, dstate0 = layer.backward(dy, dfinal, truncate=truncate)
    out = {"y": y, "final": final, "dx": dx, "dstate0": dstate0}
    out.update({f"grad {n}": p.grad for n, p in layer.named_params().items()})
    return out


def flat(v):
    return np.concatenate([np.ravel(a) for a in v]) if isinstance(v, tuple) else np.ravel(v)


OPTIONS = {
    "plain": {},
    "lengths": {"lengths": np.array([5, 2, 0])},
    "truncate": {"truncate": 2},
    "bidirectional": {"bidirectional": True, "lengths": np.array([4, 5, 1])},
    "cells": {"cells": True},
}


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_fused_steps_equal_numpy_steps(host, cell, option, dtype):
    opts = dict(OPTIONS[option])
    if opts.get("cells") and not cell.startswith("lstm"):
        pytest.skip("cell outputs: LSTM only")
    bidi = opts.pop("bidirectional", False)
    numpy_layer = CELLS[cell](dtype, np.random.default_rng(0), bidirectional=bidi)
    numpy_layer.zero_grad()
    cuda_layer = fused(copy.deepcopy(numpy_layer))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, D)).astype(dtype)
    rows = 2 * (2 if bidi else 1)
    state = tuple(rng.standard_normal((rows, N, H)).astype(dtype)
                  for _ in numpy_layer.state_names)
    state = state if len(state) > 1 else state[0]
    args = (x, state, opts.get("lengths"), opts.get("truncate"), opts.get("cells", False))
    want, got = run(numpy_layer, *args), run(cuda_layer, *args)
    assert host.calls.count(f"{cell.split('_')[0]}_step_forward") == T * rows
    assert host.calls.count(f"{cell.split('_')[0]}_step_backward") == T * rows
    for name, w in want.items():
        w, g = flat(w), flat(got[name])
        err = np.linalg.norm(g - w) / np.linalg.norm(w)
        assert err <= TOL[dtype], f"{cell} {option} {np.dtype(dtype)}: {name} off by {err:.1e}"


@needs_gxx
@pytest.mark.parametrize("vocab", [20, 300])  # 20: the embedding fused into layer 0's table
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_trains_the_same_with_fused_steps(host, cell, vocab):
    """Two SGD steps of a 2-layer language model with dropout and a carried state: the
    fused steps give the NumPy steps' losses and weights (float64, 1e-12)."""
    models = [LanguageModel(vocab, cell=cell, embed_size=16, hidden_size=16, num_layers=2,
                            dropout=0.3, dtype=np.float64, rng=np.random.default_rng(0))
              for _ in range(2)]
    fused(models[1].rnn)
    ids = np.random.default_rng(1).integers(0, vocab, size=(3, 7, 4))  # windows (T, N)
    losses = []
    for model in models:
        params, state, mine = model.named_params(), None, []
        opt = SGD(params, lr=1.0)
        for s in range(2):
            loss, state = model.loss(ids[s], ids[s + 1], state)
            model.zero_grad()
            model.backward_loss()
            opt.step()
            mine.append(loss)
        losses.append(mine)
    assert host.calls, "the fused steps did not run"
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-12)
    want, got = models[0].named_params(), models[1].named_params()
    for name, p in want.items():
        err = np.linalg.norm(got[name].value - p.value) / np.linalg.norm(p.value)
        assert err <= 1e-12, f"{name} off by {err:.1e}"


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("V, M", [(300, 1000), (1000, 4000), (5000, 64)])
def test_segment_sum_kernel_adds_each_ids_rows_in_order(host, V, M, dtype):
    """The embedding's GPU gradient (sort, then one thread per (id, column)): each id's rows
    added one after another in their original order (bit for bit), and NumPy's sum (whose
    reduceat groups the additions differently) to rounding."""
    assert V > ONE_HOT_MAX  # else the one-hot matmul, no kernel
    rng = np.random.default_rng(3)
    ids = rng.integers(0, V, size=(M // 4, 4))
    rows = rng.standard_normal((M // 4, 4, 9)).astype(dtype)
    start = rng.standard_normal((V, 9)).astype(dtype)
    want, got = start.copy(), start.copy()
    add_rows_at(want, ids, rows, segment_kernel=False)
    add_rows_at(got, ids, rows, segment_kernel=True)
    assert host.calls == ["segment_sum"]
    in_order = start.copy()
    flat_ids, flat_rows = ids.reshape(-1), rows.reshape(-1, 9)
    for v in np.unique(flat_ids):
        mine = flat_rows[flat_ids == v]  # (count, 9) in their original order
        total = mine[0].copy()
        for r in mine[1:]:
            total += r
        in_order[v] += total
    np.testing.assert_array_equal(got, in_order)
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: the CUDA sources cannot be "
                    "compiled here")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("source, what", SOURCES, ids=[f"{w}{i}" for i, (_, w) in
                                                       enumerate(SOURCES)])
def test_kernel_sources_compile_for_sm90(tmp_path, source, what, dtype):
    cubin = nvcc_cubin(source, dtype, tmp_path)
    for name, _ in kernels_of(source):
        assert name.encode() in cubin, f"kernel {name} missing from the cubin"


@needs_gxx
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_model_on_the_device_path_takes_the_fused_steps(host, fake_cupy, monkeypatch, cell):
    """The whole device path as on a GPU: a language model built with ``device="cuda"`` on
    the CuPy stand-in (whose arrays refuse NumPy arrays), given a ``RawKernel`` so that the
    time loop's dispatch (``nn/_on_device.py``) picks the fused steps, launched through
    ``_cuda.launch`` into the g++ build. Two SGD steps (V = 300: the embedding's gradient by
    the segment-sum kernel) equal the CPU model's to 1e-12."""
    monkeypatch.setattr(fake_cupy, "RawKernel", object, raising=False)
    models = [LanguageModel(300, cell=cell, embed_size=16, hidden_size=16, num_layers=2,
                            dropout=0.3, dtype=np.float64, device=device,
                            rng=np.random.default_rng(0)) for device in ("cpu", "cuda")]
    ids = np.random.default_rng(1).integers(0, 300, size=(3, 7, 4))  # windows (T, N)
    losses = []
    for model in models:
        opt, state, mine = SGD(model.named_params(), lr=1.0), None, []
        for s in range(2):
            loss, state = model.loss(ids[s], ids[s + 1], state)
            model.zero_grad()
            model.backward_loss()
            opt.step()
            mine.append(float(loss))
        losses.append(mine)
    for kind in ("step_forward", "step_backward"):
        assert host.calls.count(f"{cell}_{kind}") == 2 * 2 * 7, kind  # steps x layers x T
    assert "segment_sum" in host.calls
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-12)
    for name, p in models[0].named_params().items():
        got = models[1].named_params()[name].value.view(np.ndarray)
        err = np.linalg.norm(got - p.value) / np.linalg.norm(p.value)
        assert err <= 1e-12, f"{name} off by {err:.1e}"

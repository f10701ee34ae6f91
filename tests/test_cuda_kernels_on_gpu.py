"""The fused cell kernels on a real GPU (marked ``gpu``; skipped without CuPy and a GPU).

Run by ``benchmarks/gpu.py`` on the device machine (``pytest -m gpu``). On the GPU each
cell's fused steps (``FORWARD_CUDA``/``BACKWARD_CUDA``, compiled by CuPy) must give the
NumPy layer's outputs, final states and gradients on the CPU (float64 1e-10, float32 1e-4,
issue 21's limits) and the xp-generic steps run on CuPy (``fused = False``); the kernels
must be the ones that ran (the compile cache holds them). The embedding's segment sum gives
the same bits twice, and ``float32_matmul`` switches TF32 off and on, measurably.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn import Embedding, _cuda


def _no_gpu() -> str | None:
    try:
        import cupy

        return None if cupy.cuda.runtime.getDeviceCount() > 0 else "CuPy sees no GPU"
    except Exception as e:  # noqa: BLE001 - any failure here means: no usable GPU
        return f"no CuPy or no GPU ({type(e).__name__}: {e})"


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_no_gpu() is not None,
                                                   reason=str(_no_gpu()))]
T, N, D, H = 6, 5, 4, 7
TOL = {np.float64: 1e-10, np.float32: 1e-4}
CELLS = {
    "rnn_tanh": lambda dt: RNN(D, H, 2, dtype=dt, rng=np.random.default_rng(0)),
    "rnn_relu": lambda dt: RNN(D, H, 2, nonlinearity="relu", dtype=dt,
                               rng=np.random.default_rng(0)),
    "lstm": lambda dt: LSTM(D, H, 2, dtype=dt, rng=np.random.default_rng(0)),
    "lstm_peephole": lambda dt: LSTM(D, H, 2, peephole=True, dtype=dt,
                                     rng=np.random.default_rng(0)),
    "gru": lambda dt: GRU(D, H, 2, dtype=dt, rng=np.random.default_rng(0)),
    "gru_nobias": lambda dt: GRU(D, H, 2, bias=False, dtype=dt, rng=np.random.default_rng(0)),
}


def host(a):
    import cupy

    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


def run(layer, x, lengths, truncate):
    """Everything a forward and a backward give, on the host, flattened per tensor."""
    import cupy

    on_gpu = layer.device.is_cuda
    up = cupy.asarray if on_gpu else np.asarray
    y, final = layer(up(x), None, lengths)
    rng = np.random.default_rng(3)
    dy = rng.standard_normal(y.shape).astype(layer.dtype)
    dx, dstate0 = layer.backward(up(dy), None, truncate=truncate)
    flat = lambda v: np.concatenate([host(a).ravel() for a in v]) if isinstance(  # noqa: E731
        v, tuple) else host(v).ravel()
    out = {"y": flat(y), "final": flat(final), "dx": flat(dx), "dstate0": flat(dstate0)}
    out.update({n: host(p.grad).ravel() for n, p in layer.named_params().items()})
    return out


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("option", ["plain", "lengths", "truncate"])
@pytest.mark.parametrize("cell", CELLS)
def test_fused_kernels_match_numpy_on_cpu_and_unfused_on_gpu(cell, option, dtype):
    cpu = CELLS[cell](dtype)
    fused = copy.deepcopy(cpu).to("cuda")
    unfused = copy.deepcopy(cpu).to("cuda")
    unfused.fused = False
    x = np.random.default_rng(1).standard_normal((T, N, D)).astype(dtype)
    lengths = np.array([6, 2, 0, 5, 6]) if option == "lengths" else None
    truncate = 2 if option == "truncate" else None
    _cuda._KERNELS.clear()
    got = run(fused, x, lengths, truncate)
    kind = cell.split("_")[0]
    assert {(f"{kind}_step_forward", np.dtype(dtype).name),
            (f"{kind}_step_backward", np.dtype(dtype).name)} <= set(_cuda._KERNELS)
    want, plain = run(cpu, x, lengths, truncate), run(unfused, x, lengths, truncate)
    for name in want:
        assert rel(got[name], want[name]) <= TOL[dtype], f"{name}: fused vs cpu"
        assert rel(got[name], plain[name]) <= TOL[dtype], f"{name}: fused vs unfused"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_gradient_is_deterministic_on_gpu(dtype):
    cpu = Embedding(1000, 16, dtype=dtype, rng=np.random.default_rng(0))
    gpu = copy.deepcopy(cpu).to("cuda")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, size=(35, 20))  # many repeats of each id
    dy = rng.standard_normal((35, 20, 16)).astype(dtype)
    import cupy

    cpu.forward(ids)
    cpu.backward(dy)
    grads = []
    for _ in range(2):
        gpu.weight.grad[...] = 0
        gpu.forward(cupy.asarray(ids))
        gpu.backward(cupy.asarray(dy))
        grads.append(host(gpu.weight.grad))
    assert ("segment_sum", np.dtype(dtype).name) in _cuda._KERNELS
    np.testing.assert_array_equal(grads[0], grads[1])
    assert rel(grads[0], cpu.weight.grad) <= TOL[dtype]


def test_float32_matmul_switches_tf32_from_code():
    import cupy

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 256, 512)), rng.standard_normal((512, 256))
    exact = a @ b
    a32, b32 = cupy.asarray(a, np.float32), cupy.asarray(b, np.float32)
    err = {}
    try:
        for tf32 in (False, True):
            _cuda.float32_matmul(tf32)
            err[tf32, "2d"] = rel(host(a32[0] @ b32), exact[0])
            err[tf32, "batched"] = rel(host(a32 @ b32), exact)
    finally:
        _cuda.float32_matmul(False)
    for form in ("2d", "batched"):
        assert err[False, form] < 1e-6, err  # full float32: about 1e-7
        assert err[True, form] > 1e-5, err  # TF32's 10-bit mantissa: about 1e-4

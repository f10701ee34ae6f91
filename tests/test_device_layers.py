"""Every layer and model on a device, proven free of NumPy arrays on the CPU.

The fake CuPy (tests/fake_cupy.py) makes ``device="cuda"`` run here with FakeGPUArray, an
ndarray subclass that refuses any operation with a plain NumPy array, as CuPy does. Each
case of tests/device_cases.py runs on it and on "cpu": every output, state, parameter
and gradient on the device must be a FakeGPUArray (a NumPy array in the device path would
have raised, or would show up here as a plain ndarray), and the numbers must equal the
CPU's exactly (the same NumPy code ran). The real GPU's parity: tests/test_gpu_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from device_cases import CASES, compare
from fake_cupy import FakeGPUArray

from rnnlab.device import CPU, Device
from rnnlab.models import LanguageModel
from rnnlab.nn import LSTM

DEVICE_ONLY = ("predict", "proba", "sample", "greedy", "beam", "sampled", "loss")  # host


def _on_device(name: str, a) -> bool:
    return name.startswith(DEVICE_ONLY) or name.split(".")[0] in DEVICE_ONLY or \
        isinstance(a, FakeGPUArray)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_array_stays_on_the_device_and_matches_the_cpu(case, fake_cupy):
    want = CASES[case]("cpu", np.float64)
    got = CASES[case]("cuda", np.float64)
    leaked = [n for n, a in got.items() if not _on_device(n, a)]
    assert not leaked, f"not on the device: {leaked}"
    host = [n for n, a in want.items() if isinstance(a, FakeGPUArray)]
    assert not host, f"device arrays on the CPU path: {host}"
    errors = compare(got, want)
    assert max(errors.values()) == 0.0, {n: e for n, e in errors.items() if e}


def test_to_moves_params_grads_and_drops_caches(fake_cupy):
    model = LanguageModel(7, embed_size=6, hidden_size=6, num_layers=2,
                          rng=np.random.default_rng(0))
    ids = np.arange(12).reshape(4, 3) % 7
    model.loss(ids, ids)
    model.backward_loss()
    grads = {n: p.grad.copy() for n, p in model.named_params().items()}
    assert model.to("cuda") is model
    assert model.device == Device("cuda", 0) and model.xp is fake_cupy
    for m in model.modules():
        assert m.device == Device("cuda", 0) and m.xp is fake_cupy
    for name, p in model.named_params().items():
        assert isinstance(p.value, FakeGPUArray) and isinstance(p.grad, FakeGPUArray), name
        assert np.array_equal(p.grad.view(np.ndarray), grads[name])
    assert model.rnn._buffers == [{}, {}] and model.rnn._cache is None
    assert model._looked_up is None and model.decoder._cache is None
    freed = fake_cupy.pool.freed
    model.to("cpu")
    assert fake_cupy.pool.freed == freed + 1  # the GPU's memory given back
    assert model.device == CPU and model.xp is np
    for p in model.named_params().values():
        assert type(p.value) is np.ndarray and type(p.grad) is np.ndarray


def test_tied_weights_stay_one_parameter(fake_cupy):
    model = LanguageModel(7, embed_size=6, hidden_size=6, tie_weights=True, init_range=0.1,
                          device="cuda", rng=np.random.default_rng(0))
    assert model.decoder.weight is model.embedding.weight
    assert isinstance(model.decoder.weight.value, FakeGPUArray)


def test_same_seed_same_weights_on_every_device(fake_cupy):
    a = LSTM(3, 4, 2, dropout=0.5, rng=np.random.default_rng(0))
    b = LSTM(3, 4, 2, dropout=0.5, device="cuda", rng=np.random.default_rng(0))
    for (n, p), q in zip(a.named_params().items(), b.named_params().values(), strict=True):
        assert np.array_equal(p.value, q.value.view(np.ndarray)), n


def test_the_fused_step_is_used_only_where_kernels_compile(fake_cupy):
    class WithKernels(LSTM):
        def _step_forward_cuda(self, k, t):
            raise AssertionError("no kernels on the fake device")

        def _step_backward_cuda(self, k, t, dstate, dG_t, dGh_t):
            raise AssertionError("no kernels on the fake device")

    layer = WithKernels(3, 4, device="cuda", rng=np.random.default_rng(0))
    assert layer._steps() == (layer._step_forward, layer._step_backward)  # no RawKernel
    fake_cupy.RawKernel = object  # a module that can compile kernels
    assert layer._steps() == (layer._step_forward_cuda, layer._step_backward_cuda)
    layer.fused = False
    assert layer._steps() == (layer._step_forward, layer._step_backward)
    assert LSTM(3, 4, rng=np.random.default_rng(0))._steps()[0].__name__ == "_step_forward"


def test_a_numpy_input_to_a_device_layer_is_refused(fake_cupy):
    layer = LSTM(3, 4, device="cuda", rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="NumPy array"):
        layer.forward(np.zeros((2, 1, 3), np.float32))

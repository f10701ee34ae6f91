"""Optimizers and clipping on a device (the fake CuPy of tests/fake_cupy.py on the CPU).

A state array follows its parameter: made on its device, moved at the next step after
``model.to``; a run moved cpu -> device -> cpu between steps ends exactly where a run that
never moved does. Clipping's norm is summed on the device and read once.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_cupy import FakeGPUArray

from rnnlab.models import LanguageModel
from rnnlab.optim import OPTIMIZERS, clip_grad_norm, grad_norm
from rnnlab.optim.adaptive import Adam

OPTIONS = {"sgd": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
           "adam": dict(lr=0.01, weight_decay=0.01, decoupled=True),
           "adagrad": dict(lr=0.1), "rmsprop": dict(lr=0.01, momentum=0.5, centered=True)}


def _model(device="cpu"):
    return LanguageModel(7, embed_size=6, hidden_size=6, num_layers=2, dtype=np.float64,
                         device=device, rng=np.random.default_rng(0))


def _steps(model, opt, n, seed=1, clip=1.0):
    rng = np.random.default_rng(seed)
    norms = []
    for _ in range(n):
        ids = rng.integers(0, 7, (5, 3))
        model.zero_grad()
        model.loss(ids, np.roll(ids, 1))
        model.backward_loss()
        norms.append(clip_grad_norm(model.named_params(), clip))
        opt.step()
    return norms


def _host(model):
    return {n: np.array(p.value.view(np.ndarray)) for n, p in model.named_params().items()}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_on_the_device_equals_the_cpu(name, fake_cupy):
    cpu, dev = _model(), _model("cuda")
    o_cpu = OPTIMIZERS[name](cpu.named_params(), **OPTIONS[name])
    o_dev = OPTIMIZERS[name](dev.named_params(), **OPTIONS[name])
    assert _steps(cpu, o_cpu, 3) == _steps(dev, o_dev, 3)  # the norms, read once each
    for bufs in o_dev.state.values():
        assert all(isinstance(b, FakeGPUArray) for b in bufs.values())
    for p in dev.named_params().values():
        assert isinstance(p.value, FakeGPUArray) and isinstance(p.grad, FakeGPUArray)
    want, got = _host(cpu), _host(dev)
    assert all(np.array_equal(got[n], want[n]) for n in want)


def test_adam_moved_between_steps_equals_adam_never_moved(fake_cupy):
    still, moved = _model(), _model()
    o_still = Adam(still.named_params(), lr=0.01)
    o_moved = Adam(moved.named_params(), lr=0.01)
    _steps(still, o_still, 2, seed=1)
    _steps(moved, o_moved, 2, seed=1)
    moved.to("cuda")  # moments made on the CPU, two steps in
    _steps(still, o_still, 2, seed=2)
    _steps(moved, o_moved, 2, seed=2)
    assert all(isinstance(b, FakeGPUArray) for bufs in o_moved.state.values()
               for b in bufs.values())
    moved.to("cpu")
    _steps(still, o_still, 2, seed=3)
    _steps(moved, o_moved, 2, seed=3)
    assert all(type(b) is np.ndarray for bufs in o_moved.state.values() for b in bufs.values())
    want, got = _host(still), _host(moved)
    assert all(np.array_equal(got[n], want[n]) for n in want)
    assert o_moved.steps == o_still.steps == 6


def test_state_dict_is_on_the_host_and_loads_onto_the_device(fake_cupy):
    dev = _model("cuda")
    opt = Adam(dev.named_params(), lr=0.01)
    _steps(dev, opt, 2)
    arrays, meta = opt.state_dict()
    assert arrays and all(type(a) is np.ndarray for a in arrays.values())
    cpu = _model()
    o_cpu = Adam(cpu.named_params(), lr=0.01)
    o_cpu.load_state_dict(arrays, meta)  # a device's state onto the CPU
    assert all(type(b) is np.ndarray for bufs in o_cpu.state.values() for b in bufs.values())
    fresh = Adam(_model("cuda").named_params(), lr=0.01)
    fresh.load_state_dict(arrays, meta)  # and back onto a device
    for name, bufs in fresh.state.items():
        for b, buf in bufs.items():
            assert isinstance(buf, FakeGPUArray)
            assert np.array_equal(buf.view(np.ndarray), arrays[f"{name}.{b}"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_norm_on_the_device(dtype, fake_cupy):
    from rnnlab.device import to_device
    from rnnlab.nn import Parameter

    rng = np.random.default_rng(0)
    host = [Parameter(rng.standard_normal(s).astype(dtype)) for s in [(3, 4), (5000,), (7,)]]
    dev = [Parameter(to_device(p.value, "cuda")) for p in host]
    for h, d in zip(host, dev, strict=True):
        h.grad[...] = rng.standard_normal(h.shape)
        d.grad = to_device(h.grad, "cuda")
    assert isinstance(grad_norm(dev), float)
    assert grad_norm(dev) == pytest.approx(grad_norm(host), rel=1e-6 if dtype == np.float32
                                           else 1e-15)
    big = [Parameter(to_device(np.zeros(2, np.float32), "cuda"))]
    big[0].grad = to_device(np.array([3e19, 4e19], np.float32), "cuda")  # squares overflow
    with np.errstate(over="ignore"):  # the float32 dot overflows, then float64 is used
        assert grad_norm(big) == pytest.approx(5e19)
    norm = clip_grad_norm(dev, 0.5)
    assert norm == pytest.approx(grad_norm(host), rel=1e-6)
    assert grad_norm(dev) == pytest.approx(0.5, rel=1e-5)
    assert all(isinstance(p.grad, FakeGPUArray) for p in dev)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 1e9])
def test_clip_and_read_is_one_read_and_clips_as_on_the_cpu(max_norm, fake_cupy):
    from rnnlab.device import to_device
    from rnnlab.nn import Parameter
    from rnnlab.optim import clip_and_read

    rng = np.random.default_rng(0)
    host = [Parameter(rng.standard_normal(s)) for s in [(3, 4), (50,)]]
    for p in host:
        p.grad[...] = rng.standard_normal(p.shape)
    dev = [Parameter(to_device(p.value, "cuda")) for p in host]
    for h, d in zip(host, dev, strict=True):
        d.grad = to_device(h.grad, "cuda")
    loss = to_device(np.float64(2.5), "cuda")  # a loss on the device, not read yet
    before = FakeGPUArray.reads
    got = clip_and_read(dev, max_norm, loss)
    assert FakeGPUArray.reads - before == 1  # loss and norm together
    assert got == clip_and_read(host, max_norm, 2.5)  # the same numbers as the CPU's
    for h, d in zip(host, dev, strict=True):
        assert np.array_equal(d.grad.view(np.ndarray), h.grad)


def test_clip_and_read_when_float32_squares_overflow(fake_cupy):
    from rnnlab.device import to_device
    from rnnlab.nn import Parameter
    from rnnlab.optim import clip_and_read

    p = Parameter(to_device(np.zeros(2, np.float32), "cuda"))
    p.grad = to_device(np.array([3e19, 4e19], np.float32), "cuda")
    with np.errstate(over="ignore"):
        loss, norm = clip_and_read([p], 1.0, to_device(np.float32(1.0), "cuda"))
    assert (loss, norm) == (1.0, pytest.approx(5e19))
    assert np.allclose(p.grad.view(np.ndarray), [0.6, 0.8])  # clipped once the norm is known

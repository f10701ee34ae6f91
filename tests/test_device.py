"""rnnlab.device: parsing, the one-line errors without CuPy or a GPU, moving arrays.

"No CuPy" is simulated by ``sys.modules["cupy"] = None`` (the import then fails), "CuPy
without a GPU" by a fake module reporting 0 devices (tests/fake_cupy.py), so these run on
any machine; the real GPU is exercised by tests/test_gpu_parity.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fake_cupy import FakeGPUArray, make_fake_cupy

from rnnlab.device import (
    CPU,
    Device,
    DeviceError,
    array_module,
    device_of,
    free_memory,
    to_device,
    to_host,
)


@pytest.mark.parametrize("spec, want", [
    ("cpu", Device("cpu")), ("cuda", Device("cuda", 0)), ("cuda:0", Device("cuda", 0)),
    ("cuda:3", Device("cuda", 3)), (" cuda:1 ", Device("cuda", 1)),
])
def test_parse(spec, want):
    d = Device.parse(spec)
    assert d == want
    assert Device.parse(d) is d
    assert str(d) == ("cpu" if want.kind == "cpu" else f"cuda:{want.index}")
    assert d.is_cuda == (want.kind == "cuda")


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "",
                                  "CUDA", "cuda:1:2", None, 3])
def test_parse_refuses_nonsense_in_one_line(spec):
    with pytest.raises(ValueError) as e:
        Device.parse(spec)
    msg = str(e.value)
    assert "\n" not in msg and "'cpu', 'cuda' or 'cuda:N'" in msg


def test_device_fields_checked():
    with pytest.raises(ValueError):
        Device("tpu")
    with pytest.raises(ValueError):
        Device("cpu", 1)
    with pytest.raises(ValueError):
        Device("cuda", -1)


def test_cpu_is_numpy_and_never_imports_cupy():
    # a fresh interpreter: import rnnlab, build and run a model on the CPU, no cupy loaded
    code = ("import sys, numpy as np, rnnlab, rnnlab.device as d\n"
            "from rnnlab.models import LanguageModel\n"
            "m = LanguageModel(5, embed_size=4, hidden_size=4, rng=np.random.default_rng(0))\n"
            "m.loss(np.zeros((3, 2), dtype=np.int64), np.zeros((3, 2), dtype=np.int64))\n"
            "m.backward_loss(); m.to('cpu')\n"
            "assert d.CPU.xp is np and d.array_module(np.zeros(1)) is np\n"
            "assert 'cupy' not in sys.modules, 'cupy was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_no_cupy_is_a_one_line_error_naming_the_extras(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # the import fails
    with pytest.raises(DeviceError) as e:
        Device.parse("cuda").xp  # noqa: B018
    msg = str(e.value)
    assert "\n" not in msg and "CuPy" in msg and "not installed" in msg
    assert "rnnlab[cuda12]" in msg and "rnnlab[cuda13]" in msg
    assert isinstance(e.value, ValueError)


def test_cupy_without_a_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy(0))
    with pytest.raises(DeviceError, match="no NVIDIA GPU") as e:
        Device("cuda").check()
    assert "\n" not in str(e.value)


def test_cupy_whose_runtime_fails(monkeypatch):
    mod = make_fake_cupy(1)

    def broken():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    mod.cuda.runtime.getDeviceCount = broken
    monkeypatch.setitem(sys.modules, "cupy", mod)
    with pytest.raises(DeviceError, match="finds no usable GPU.*RuntimeError.*driver"):
        Device("cuda").xp  # noqa: B018


def test_index_beyond_the_gpu_count(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy(2))
    assert Device.parse("cuda:1").check().index == 1
    with pytest.raises(DeviceError, match=r"cuda:7 does not exist: this machine has 2 GPUs "
                                          r"\(cuda:0 \.\. cuda:1\)"):
        Device.parse("cuda:7").xp  # noqa: B018


def test_to_device_and_to_host_on_the_cpu():
    x = np.arange(6.0).reshape(2, 3)
    assert to_device(x, "cpu") is x  # no copy
    assert to_device(x, CPU) is x
    assert to_host(x) is x
    assert array_module(x) is np and device_of(x) == CPU
    y = to_device([1, 2], "cpu")
    assert isinstance(y, np.ndarray) and y.tolist() == [1, 2]


def test_round_trip_through_a_device(fake_cupy):
    x = np.arange(6.0).reshape(2, 3)
    g = to_device(x, "cuda")
    assert isinstance(g, FakeGPUArray) and array_module(g) is fake_cupy
    assert device_of(g) == Device("cuda", 0)
    assert to_device(g, "cuda:0") is g  # already there: no copy
    h = to_host(g)
    assert type(h) is np.ndarray and np.array_equal(h, x)
    assert type(to_device(g, "cpu")) is np.ndarray
    free_memory(Device("cuda"))
    assert fake_cupy.pool.freed == 1
    free_memory(CPU)
    assert fake_cupy.pool.freed == 1


def test_array_module_never_imports_cupy(monkeypatch):
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    assert array_module(np.zeros(1)) is np
    assert "cupy" not in sys.modules


def test_the_fake_device_refuses_numpy_arrays(fake_cupy):
    """The proof used by the layer tests: a plain ndarray meeting a device array raises."""
    g = to_device(np.ones(3), "cuda")
    for bad in (lambda: g + np.ones(3), lambda: np.tanh(np.ones(3), out=g),
                lambda: fake_cupy.zeros(3) * np.ones(3), lambda: g[np.array([0, 1])],
                lambda: fake_cupy.tanh(np.ones(3)), lambda: np.concatenate([g, np.ones(3)]),
                lambda: g.take(np.array([0]))):
        with pytest.raises(TypeError, match="NumPy array"):
            bad()
    assert isinstance(g * 2.0 + np.float32(1), FakeGPUArray)
    assert isinstance(fake_cupy.zeros(3), FakeGPUArray)
    assert isinstance(g.sum(), FakeGPUArray) and float(g.sum()) == 3.0

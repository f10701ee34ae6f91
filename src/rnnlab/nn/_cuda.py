"""Launching the fused cell kernels on a GPU: compile once per dtype, one thread per element.

The kernels themselves are CUDA C sources kept beside the NumPy step they mirror
(``LSTM.FORWARD_CUDA`` after ``LSTM._step_forward``, ...). Each source is written for a
scalar type ``real``; :func:`kernel` prepends ``typedef float real;`` or ``typedef double
real;`` and :data:`PRELUDE` (the device functions the cells share), compiles it with CuPy's
``RawKernel`` on first use and caches it here per (kernel name, dtype). Nothing here imports
CuPy before a kernel is asked for. ``tests/test_cuda_kernels_on_cpu.py`` compiles the same
sources with g++ (an emulated grid) to check their arithmetic against the NumPy steps, and
with ``nvcc -arch=sm_90`` to check they compile for the GPU.

Layout: every buffer is C-contiguous, rows of length H (a state) or gates*H (a gate
buffer, blocks [i f g o] / [r z n]). A kernel gets ``total`` threads, one per element of
its state-shaped output: index = (a * N + n) * H + j, a the age under truncation (else 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

THREADS = 256  # threads per block

# shared device functions, the CUDA twins of activations.py's identities
PRELUDE = r"""
// sigma(x) = (1 + tanh(x / 2)) / 2: no exp, cannot overflow (activations.sigmoid_)
__device__ real sigmoid(real x) {
    return (real)0.5 * tanh((real)0.5 * x) + (real)0.5;
}
"""

# cublasMath_t (cublas_api.h); CuPy's cublas module names only the first two of them
DEFAULT_MATH, TF32_TENSOR_OP_MATH = 0, 3

_KERNELS: dict[tuple[str, str], Any] = {}  # (kernel name, dtype name) -> cupy.RawKernel


def typed_source(source: str, dtype: Any) -> str:
    """The full CUDA source of a cell kernel for ``dtype`` (float32 or float64)."""
    real = {"float32": "float", "float64": "double"}[np.dtype(dtype).name]
    return f"typedef {real} real;\n{PRELUDE}\n{source}"


def compile_kernel(source: str, name: str, dtype: Any) -> Any:
    """A ``cupy.RawKernel`` of ``source``'s ``extern "C" __global__`` function ``name``."""
    import cupy  # only on a CUDA device

    return cupy.RawKernel(typed_source(source, dtype), name)


def kernel(source: str, name: str, dtype: Any) -> Any:
    """The compiled kernel ``name`` of ``source`` for ``dtype``, compiled once per process."""
    key = (name, np.dtype(dtype).name)
    if key not in _KERNELS:
        _KERNELS[key] = compile_kernel(source, name, dtype)
    return _KERNELS[key]


def launch(source: str, name: str, dtype: Any, total: int, *args: Any) -> None:
    """Run kernel ``name`` with ``total`` threads (one per element) on the arrays ``args``.

    Python ints become C ``int`` (np.int32). Arrays must be C-contiguous: a kernel indexes
    them as flat rows. That is not checked here, on every step's path (a few microseconds
    per launch add up at 200 launches a step); the CPU tests' stand-in kernels
    (``tests/cuda_host.py``) check it on every launch of the same methods.
    """
    blocks = (total + THREADS - 1) // THREADS
    if blocks:
        cargs = tuple(np.int32(a) if type(a) is int else a for a in args)
        kernel(source, name, dtype)((blocks,), (THREADS,), cargs)


def float32_matmul(tf32: bool, device_index: int = 0) -> None:
    """Choose how cuBLAS multiplies float32 matrices on one GPU: full float32, or TF32.

    CuPy (``cupy/_core/_routines_linalg.pyx``) reads the environment variable ``CUPY_TF32``
    only while its float32 compute type is still undecided, on the first float32 product;
    ``set_compute_type`` decides it from code instead, and then the variable is never read.
    2-D products (``dot``, 2-D ``matmul``) call ``cublasGemmEx`` with ``CUBLAS_COMPUTE_32F``
    (COMPUTE_TYPE_DEFAULT) or ``CUBLAS_COMPUTE_32F_FAST_TF32`` (COMPUTE_TYPE_TF32). Batched
    products (``matmul`` of 3-D arrays) pass the legacy compute type ``CUDA_R_32F`` to
    ``cublasGemmStridedBatchedEx``; for those, as far as read (not measured), the cuBLAS
    handle's math mode decides (``CUBLAS_DEFAULT_MATH`` or ``CUBLAS_TF32_TENSOR_OP_MATH``),
    so it is set too. The
    compute type is CuPy-wide (one per process), the math mode per device's handle: call this
    before a model's step when models with different settings share a process. Whether it
    takes effect is measured on the GPU (tests/test_cuda_kernels_on_gpu.py, gpu.py's
    environment record); here it cannot be.
    """
    import cupy
    from cupy._core import _routines_linalg as linalg  # CuPy's own (private) switch
    from cupy_backends.cuda.libs import cublas

    linalg.set_compute_type(
        np.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)
    with cupy.cuda.Device(device_index):
        handle = cupy.cuda.device.get_cublas_handle()
        cublas.setMathMode(handle, TF32_TENSOR_OP_MATH if tf32 else DEFAULT_MATH)


def full_float32_products(device_index: int) -> None:
    """Float32 products in full float32 on GPU ``device_index``, set in code whatever
    ``CUPY_TF32`` says (``Module.to`` calls it): :func:`float32_matmul` with ``tf32=False``.
    A CuPy without that (private) switch is left to its default, which is full float32 unless
    the variable is set."""
    try:
        float32_matmul(False, device_index)
    except (ImportError, AttributeError):  # another CuPy layout, or tests' stand-in
        pass

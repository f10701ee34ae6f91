"""Run rnnlab's CUDA kernel sources on the CPU: g++ and an emulated grid (tests only).

A kernel source (``LSTM.FORWARD_CUDA``, ...) is CUDA C: ``__device__`` functions of scalars
and ``extern "C" __global__`` wrappers that index the buffers. Here the same text, with
``__device__`` and ``__global__`` defined away and ``blockIdx``/``blockDim``/``threadIdx``
as plain globals, is compiled by g++ into a shared library; for each kernel a host function
``host_<name>(blocks, threads, args...)`` runs the wrapper once per (block, thread), as the
GPU would (sequentially). :class:`HostKernel` stands in for a ``cupy.RawKernel``:
``kernel((blocks,), (threads,), args)`` with NumPy arrays for device arrays.

What this checks: the kernels' arithmetic and indexing, and the Python methods that launch
them (argument order, shapes, buffers). What it cannot: CUDA-only behaviour (NVRTC, the
real launch, float rounding of the GPU's tanh; fused multiply-adds: g++ runs with
``-ffp-contract=off``, nvcc contracts by default).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.nn._cuda import typed_source

GXX = shutil.which("g++")
NVCC = shutil.which("nvcc")

HEADER = r"""
#include <cmath>
using std::tanh;
#define __device__ static
#define __global__
struct rnnlab_dim3 { unsigned x, y, z; };
static rnnlab_dim3 blockIdx, blockDim, threadIdx;
"""

_KERNEL = re.compile(r'extern "C" __global__ void (\w+)\((.*?)\)\s*\{', re.S)


def kernels_of(source: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each ``extern "C" __global__`` kernel of ``source``: (name, [(C type, param name)])."""
    found = []
    for name, params in _KERNEL.findall(source):
        params = re.sub(r"//[^\n]*", "", params)  # comments between parameters
        args = []
        for p in params.split(","):
            words = p.replace("*", " * ").split()
            args.append((" ".join(words[:-1]), words[-1]))
        found.append((name, args))
    return found


def host_source(source: str, dtype: Any) -> str:
    """``source`` for g++, with one grid-emulating ``host_<name>`` per kernel."""
    out = [HEADER, typed_source(source, dtype)]
    for name, args in kernels_of(source):
        decl = ", ".join(f"{t} {n}" for t, n in args)
        call = ", ".join(n for _, n in args)
        out.append(
            f'extern "C" void host_{name}(int blocks, int threads, {decl}) {{\n'
            f"    blockDim.x = threads;\n"
            f"    for (unsigned b = 0; b < (unsigned)blocks; ++b)\n"
            f"        for (unsigned t = 0; t < (unsigned)threads; ++t) {{\n"
            f"            blockIdx.x = b; threadIdx.x = t;\n"
            f"            {name}({call});\n"
            f"        }}\n}}\n")
    return "\n".join(out)


class HostKernel:
    """A ``cupy.RawKernel`` look-alike running ``host_<name>`` of a g++-built library."""

    def __init__(self, lib: ctypes.CDLL, name: str, args: list[tuple[str, str]],
                 dtype: np.dtype, calls: list[str]) -> None:
        self.fn, self.name, self.args, self.dtype, self.calls = (
            getattr(lib, f"host_{name}"), name, args, dtype, calls)

    def __call__(self, grid: tuple[int], block: tuple[int], args: tuple[Any, ...]) -> None:
        assert len(args) == len(self.args), f"{self.name}: {len(args)} arguments given"
        c_args: list[Any] = []
        for (ctype, pname), a in zip(self.args, args, strict=True):
            if "*" in ctype:  # a device array
                assert isinstance(a, np.ndarray), f"{self.name}.{pname}: not an array"
                want = np.int64 if "long long" in ctype else self.dtype
                assert a.dtype == want, f"{self.name}.{pname}: dtype {a.dtype}, not {want}"
                assert a.flags.c_contiguous, f"{self.name}.{pname}: not C-contiguous"
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            else:
                assert ctype == "int" and isinstance(a, np.int32), f"{self.name}.{pname}: {a!r}"
                c_args.append(ctypes.c_int(int(a)))
        self.calls.append(self.name)
        self.fn(ctypes.c_int(grid[0]), ctypes.c_int(block[0]), *c_args)


def build(source: str, dtype: Any, folder: Path) -> ctypes.CDLL:
    """Compile ``source`` for ``dtype`` with g++ into ``folder``; the loaded library."""
    assert GXX is not None
    tag = f"{hashlib.sha1(source.encode()).hexdigest()[:12]}_{np.dtype(dtype).name}"
    cpp, so = folder / f"k_{tag}.cpp", folder / f"k_{tag}.so"
    if not so.exists():
        cpp.write_text(host_source(source, dtype))
        subprocess.run([GXX, "-O1", "-std=c++17", "-ffp-contract=off", "-Wall", "-Werror",
                        "-Wno-unused-function", "-shared", "-fPIC", "-o", str(so), str(cpp)],
                       check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(so))


class HostCompiler:
    """``rnnlab.nn._cuda.compile_kernel`` on the CPU: each call's kernel names in ``calls``."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.calls = folder, []

    def __call__(self, source: str, name: str, dtype: Any) -> HostKernel:
        args = dict(kernels_of(source))[name]
        return HostKernel(build(source, dtype, self.folder), name, args, np.dtype(dtype),
                          self.calls)


def nvcc_cubin(source: str, dtype: Any, folder: Path) -> bytes:
    """``source`` compiled for sm_90 by nvcc (``-cubin``): the cubin's bytes."""
    assert NVCC is not None
    tag = f"{hashlib.sha1(source.encode()).hexdigest()[:12]}_{np.dtype(dtype).name}"
    cu, cubin = folder / f"k_{tag}.cu", folder / f"k_{tag}.cubin"
    cu.write_text(typed_source(source, dtype))
    done = subprocess.run([NVCC, "-arch=sm_90", "-cubin", "-Werror", "all-warnings",
                           "-o", str(cubin), str(cu)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return cubin.read_bytes()

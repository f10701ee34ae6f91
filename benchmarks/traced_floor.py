"""The matmul floor of the task rows, traced: the products NumPy ran, each timed alone.

``floor.py`` lists the language model's products by hand. The task models (bidirectional
layers, attention, batches whose length varies) are traced instead: a child process runs
the rnnlab side of ``task_worker.py`` with ``gemm_trace.c`` preloaded, which records every
float32 product NumPy hands to OpenBLAS (``sgemm``: a matrix times a matrix, ``sgemv``: a
matrix times a vector) while the worker trains on (or decodes) each of its batches once.
Each distinct product is then timed alone with ``np.matmul`` at the same shapes, layout and
thread count (``floor.time_call``); the sum over the calls, per batch, is the floor. As in
``floor.py``, PyTorch's time per batch over it is the highest ratio NumPy's matmul allows.

Needs a C compiler (``cc``) and NumPy's bundled OpenBLAS (the wheels' ``scipy_openblas64_``
functions); without them, or if nothing was traced, the row's ceiling is "-". NumPy
multiplies an array by its own transpose with ``syrk``, which is not traced: rnnlab's
steps never do. Run alone (for one row): ``python benchmarks/traced_floor.py classify``.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from floor import time_call, time_matmul

HERE = Path(__file__).resolve().parent
ROW_MAJOR, NO_TRANS = 101, 111  # CBLAS's enums
Product = tuple[Any, ...]  # ("sgemm", layout, A shape, B shape) or ("sgemv", trans, M, N)


def parse(line: str) -> Product:
    """One traced call -> what ``time_product`` needs (shapes of A and B as stored)."""
    kind, order, *rest = line.split()
    if kind == "sgemv":  # NumPy calls some column-major: A (M, N) so is (N, M) row-major
        trans, M, N = map(int, rest)
        if int(order) != ROW_MAJOR:
            return ("sgemv", trans == NO_TRANS, N, M)
        return ("sgemv", trans != NO_TRANS, M, N)
    if int(order) != ROW_MAJOR:
        raise ValueError(f"a column-major matrix product, not NumPy's way: {line!r}")
    ta, tb, M, N, K = map(int, rest)  # C (M, N) = op(A) (M, K) op(B) (K, N)
    a_t, b_t = ta != NO_TRANS, tb != NO_TRANS
    return ("sgemm", ("t" if a_t else "n") + ("t" if b_t else "n"),
            (K, M) if a_t else (M, K), (N, K) if b_t else (K, N))


def time_product(p: Product) -> float:
    """Median seconds of one traced product, alone."""
    if p[0] == "sgemm":
        return time_matmul(p[1], p[2], p[3])
    _, trans, M, N = p
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, N), dtype=np.float32)
    A = a.T if trans else a
    x = rng.standard_normal(A.shape[1], dtype=np.float32)
    return time_call(lambda: A @ x, 2 * M * N)


def build(folder: Path) -> Path | None:
    """Compile gemm_trace.c into ``folder``; None without a C compiler."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    lib = folder / "gemm_trace.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(HERE / "gemm_trace.c"),
                    "-ldl"], check=True)
    return lib


def child(config: str, threads: int, trace: str, lib: str) -> dict[str, Any]:
    """In the preloaded child: trace one pass over the batches, time what was traced."""
    from task_worker import N_BATCHES, Worker

    cfg = json.loads(config)
    worker = Worker("rnnlab", threads)  # its thread limits hold for the timing too
    worker.setup(cfg)
    worker.run(cfg["kind"], 1)  # warm-up: the buffers exist, the next pass starts at batch 1
    tracer = ctypes.CDLL(lib)
    tracer.gemm_trace_to(trace.encode())
    done = worker.run(cfg["kind"], N_BATCHES)  # each batch once
    tracer.gemm_trace_to(None)
    calls = Counter(parse(line) for line in Path(trace).read_text().splitlines())
    seconds = sum(n * time_product(p) for p, n in calls.items())
    return {"seconds": seconds / N_BATCHES, "tokens": done["tokens"] / N_BATCHES,
            "calls": sum(calls.values()) / N_BATCHES, "distinct": len(calls)}


def traced_floor(cfg: dict[str, Any], threads: int,
                 env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Per batch: the floor's seconds, the tokens counted, the products traced (None, and a
    line on stderr, where this machine cannot trace)."""
    with tempfile.TemporaryDirectory() as tmp:
        lib, trace = build(Path(tmp)), Path(tmp) / "trace.txt"
        if lib is None:
            print(f"{cfg['name']}: no C compiler (cc), so no traced floor", file=sys.stderr)
            return None
        run = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cfg),
             str(threads), str(trace), str(lib)],
            env={**(os.environ if env is None else env), "LD_PRELOAD": str(lib)},
            capture_output=True, text=True)
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"{cfg['name']}: the traced floor failed ({last}), so no ceiling", file=sys.stderr)
        return None
    out = json.loads(run.stdout.splitlines()[-1])
    if not out["calls"]:
        print(f"{cfg['name']}: no product was traced (this NumPy does not call "
              "scipy_cblas_sgemm64_), so no traced floor", file=sys.stderr)
        return None
    return out


def main() -> None:
    if sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])))
        return
    from task_bench import task_config

    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(json.dumps(traced_floor(task_config(sys.argv[1]), threads)))


if __name__ == "__main__":
    main()

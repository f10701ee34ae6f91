"""benchmarks/traced_floor.py: the tracer records what NumPy hands OpenBLAS, the parser
reads it back as the products ``floor.time_matmul`` times."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from subprocess_env import src_first_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tf(monkeypatch):
    """benchmarks/traced_floor.py (the benchmarks are scripts beside each other, not a
    package: their folder goes on the path for this test only)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("traced_floor")

PROGRAM = """
import ctypes, sys
import numpy as np
a = np.ones((3, 4), np.float32)
w = np.ones((5, 4), np.float32)
u = np.ones((2, 6, 4), np.float32)
tracer = ctypes.CDLL(sys.argv[1])
tracer.gemm_trace_to(sys.argv[2].encode())
y = a @ w.T            # one sgemm, B transposed: (3, 4) (4, 5)
g = a.T @ y            # one sgemm, A transposed: (4, 3) (3, 5)
s = u @ np.ones(4, np.float32)  # (2, 6, 4) @ (4,): one sgemv per leading index
tracer.gemm_trace_to(None)
z = a @ w.T            # not traced
print(float(y.sum() + g.sum() + s.sum() + z.sum()))
"""


def test_parse_reads_numpy_calls_as_stored_shapes(tf):
    parse = tf.parse
    assert parse("sgemm 101 111 112 3 5 4") == ("sgemm", "nt", (3, 4), (5, 4))
    assert parse("sgemm 101 112 111 4 5 3") == ("sgemm", "tn", (3, 4), (3, 5))
    assert parse("sgemv 101 111 6 4") == ("sgemv", False, 6, 4)
    assert parse("sgemv 102 112 4 6") == ("sgemv", False, 6, 4)  # column-major (4, 6)
    with pytest.raises(ValueError, match="column-major"):
        parse("sgemm 102 111 111 3 5 4")


def test_time_product_times_each_kind(tf):
    assert 0 < tf.time_product(("sgemm", "nt", (64, 256), (1024, 256))) < 1.0
    assert 0 < tf.time_product(("sgemv", True, 256, 64)) < 1.0


def test_the_tracer_records_what_numpy_calls(tf, tmp_path):
    lib = tf.build(tmp_path)
    if lib is None:
        pytest.skip("no C compiler (cc) to build the tracer")
    trace = tmp_path / "trace.txt"
    env = {**src_first_env(), "LD_PRELOAD": str(lib)}
    run = subprocess.run([sys.executable, "-c", PROGRAM, str(lib), str(trace)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout) == 60 + 240 + 48 + 60  # the wrapped calls still compute
    calls = [tf.parse(line) for line in trace.read_text().splitlines()]
    if not calls:
        pytest.skip("this NumPy does not call scipy_cblas_sgemm64_ (not a NumPy wheel)")
    assert calls == [("sgemm", "nt", (3, 4), (5, 4)), ("sgemm", "tn", (3, 4), (3, 5)),
                     ("sgemv", False, 6, 4), ("sgemv", False, 6, 4)]


def test_a_task_row_gets_a_floor(tf, tmp_path):
    pytest.importorskip("threadpoolctl")
    if tf.build(tmp_path) is None:
        pytest.skip("no C compiler (cc) to build the tracer")
    cfg = importlib.import_module("task_bench").task_config("seq2seq-dot")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "traced_floor.py"),
                          "seq2seq-dot", "1"], env=src_first_env(), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert out is not None, run.stderr
    # per batch: the encoder's and decoder's steps, both directions of the products, and
    # the attention's per-sequence products (N = 64 each)
    assert out["calls"] > 2 * cfg["batch"]
    assert 0 < out["seconds"] < 1.0 and out["tokens"] > 5 * cfg["batch"]
    assert np.isfinite(out["seconds"])

"""The matmul floor: what rnnlab's training step would take if only its matmuls cost time.

Every matrix product of one rnnlab training step (the list mirrors the code: the all-steps
input projections, the per-step ``h @ W_hh^T`` and ``dG @ W_hh``, the weight gradients, the
decoder, and at small vocabularies the fused embedding table of ``LanguageModel``), each
timed alone with ``np.matmul`` on operands of the same shapes and memory layout, at the
benchmark's thread count. The sum bounds the step from below: elementwise work, the loss,
clipping and the optimizer come on top. So ``torch step / floor`` is the highest
rnnlab/torch ratio this machine's NumPy matmul allows for the algorithm as written.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnlab.models._looked_up import fuses_embedding
from rnnlab.nn.embedding import ONE_HOT_MAX  # up to this V, embedding gradients are matmuls

GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # gate blocks in the fused weights


def step_matmuls(cfg: dict[str, Any]) -> list[tuple[int, str, tuple[int, int], tuple[int, int]]]:
    """(count, layout, A shape, B shape) of each product, as stored: "nt" is A @ B.T, etc."""
    V, H, N, T, L = cfg["vocab"], cfg["hidden"], cfg["batch"], cfg["bptt"], cfg["layers"]
    E, GH, M = H, GATES[cfg["cell"]] * H, N * T  # embedding size = hidden size here
    fused = fuses_embedding(V, E)  # LanguageModel.looks_up_inputs (no dropout here)
    out = [
        (L * T, "nn", (N, H), (H, GH)),  # forward steps: h_{t-1} @ W_hh^T, a stored copy
        (L * T, "nn", (N, GH), (GH, H)),  # backward steps: dG_t @ W_hh
        (L, "tn", (M, GH), (M, H)),  # dW_hh = dG^T h_prev
        (L - 1, "nt", (M, H), (GH, H)),  # layers >= 1: input projection x @ W_ih^T
        (L - 1, "tn", (M, GH), (M, H)),  # dW_ih = dG^T x
        (L - 1, "nn", (M, GH), (GH, H)),  # dx = dG @ W_ih
        (1, "nt", (M, H), (V, H)),  # decoder: y @ W_dec^T
        (1, "tn", (M, V), (M, H)),  # dW_dec = dlogits^T y
        (1, "nn", (M, V), (V, H)),  # dy = dlogits @ W_dec
    ]
    if fused:
        out += [(1, "nt", (V, E), (GH, E)),  # table = W_emb W_ih0^T
                (1, "nn", (V, M), (M, GH)),  # dtable = onehot @ dG0
                (1, "tn", (V, GH), (V, E)),  # dW_ih0 = dtable^T W_emb
                (1, "nn", (V, GH), (GH, E))]  # dW_emb = dtable @ W_ih0
    else:
        out += [(1, "nt", (M, E), (GH, E)), (1, "tn", (M, GH), (M, E)),
                (1, "nn", (M, GH), (GH, E))]  # layer 0 as the others
        if V <= ONE_HOT_MAX:
            out.append((1, "nn", (V, M), (M, E)))  # dW_emb = onehot @ dx
    return [m for m in out if m[0] > 0]


def time_call(call: Callable[[], Any], flop: float, repeats: int = 7) -> float:
    """Median seconds of one ``call()`` of ``flop`` FLOPs (after a warm-up), in samples of
    about 40 MFLOP."""
    calls = max(1, int(4e7 / flop))
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def time_matmul(layout: str, a_shape: tuple[int, int], b_shape: tuple[int, int],
                repeats: int = 7) -> float:
    """Median seconds of one product (after a warm-up), into a preallocated output."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape, dtype=np.float32)
    b = rng.standard_normal(b_shape, dtype=np.float32)
    A = a.T if layout[0] == "t" else a
    B = b.T if layout[1] == "t" else b
    out = np.empty((A.shape[0], B.shape[1]), dtype=np.float32)
    return time_call(lambda: np.matmul(A, B, out=out), 2 * A.shape[0] * A.shape[1] * B.shape[1],
                     repeats)


def matmul_floor(cfg: dict[str, Any]) -> float:
    """Seconds per training step spent in matmuls alone (the sum over step_matmuls)."""
    return sum(n * time_matmul(layout, a, b) for n, layout, a, b in step_matmuls(cfg))

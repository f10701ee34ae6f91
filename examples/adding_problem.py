"""Hochreiter & Schmidhuber's adding problem: the vanishing gradient, measured.

Each input is T steps of two channels (Hochreiter & Schmidhuber 1997; the setup of Le et
al. 2015 and Arjovsky et al. 2016): a value ``u_t ~ U(0, 1)`` and a marker that is 1 at
exactly two steps, one drawn in each half of the sequence, and 0 elsewhere. The target is
the sum of the two marked values::

    x      : (T, N, 2)     x[t, n] = (u_t, m_t)
    target : (N,)          sum_t u_t m_t = u_a + u_b    (a < T/2 <= b)

A recurrent layer reads x, a Linear layer maps its last hidden state to one number, and
the mean squared error (written here, forward and backward by hand) is the loss::

    y, _  = rnn(x)                         (T, N, H)
    p     = y[T-1] W^T + b                 (N, 1) -> (N,)
    loss  = (1/N) sum_n (p_n - target_n)^2
    dp    = (2/N) (p - target)             (N,)    then dy[T-1] = dp W, zeros elsewhere

Always answering 1 scores MSE = Var(u_a + u_b) = 2/12 = 0.167. To beat it the gradient
must carry the first marked value back over about T/2 steps: LSTM and GRU manage it, the
vanilla RNN's gradient vanishes and it stays near 0.167 as T grows. The LSTM's forget-gate
bias starts at 1 (Gers et al. 2000; ``--forget-bias 0`` for PyTorch's init): its memory
starts open, which shortens the plateau at 0.167. Training data are drawn fresh at every
step (Adam, gradient norm clipped at 1); the test set is a fixed held-out batch. Ends with
one JSON line: the test MSE per (cell, T) and the baseline::

    python examples/adding_problem.py --quick       # LSTM at T = 20, under a minute
    python examples/adding_problem.py               # RNN, LSTM, GRU at T = 50, 100, 200
    python examples/adding_problem.py --cells lstm --lengths 100   # one cell of the grid

The full setting's measured result, with its command and time, is in the README ("Sequence
models", the table of examples).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnnlab import GRU, LSTM, RNN, Linear, Module
from rnnlab.optim import Adam, clip_grad_norm

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
BASELINE = 1.0 / 6.0  # Var(u_a + u_b) = 2 * Var(U(0, 1)) = 2/12: the MSE of always answering 1
FULL = {"cells": "rnn,lstm,gru", "lengths": "50,100,200", "steps": 3000, "hidden": 64,
        "batch": 64, "lr": 1e-2, "test": 2000}
QUICK = {"cells": "lstm", "lengths": "20", "steps": 800, "hidden": 32, "batch": 64,
         "lr": 1e-2, "test": 1000}


def adding_batch(T: int, N: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x (T, N, 2) float32 and target (N,): two marked values, one in each half, summed."""
    u = rng.random((T, N))  # (T, N) the values
    a = rng.integers(0, T // 2, N)  # (N,) the first marker, in [0, T/2)
    b = rng.integers(T // 2, T, N)  # (N,) the second, in [T/2, T)
    marker = np.zeros((T, N))  # (T, N)
    marker[a, np.arange(N)] = marker[b, np.arange(N)] = 1.0
    target = u[a, np.arange(N)] + u[b, np.arange(N)]  # (N,)
    return np.stack([u, marker], axis=-1).astype(np.float32), target.astype(np.float32)


class MSELoss(Module):
    """``L = (1/N) sum_n (p_n - t_n)^2``; backward: ``dp = (2/N) (p - t)``."""

    def __init__(self) -> None:
        self._diff: np.ndarray | None = None

    def forward(self, p: np.ndarray, t: np.ndarray) -> float:
        self._diff = p - t  # (N,)
        return float(np.mean(self._diff ** 2))

    def backward(self) -> np.ndarray:
        if self._diff is None:
            raise ValueError("backward called before forward")
        return 2.0 * self._diff / self._diff.shape[0]  # (N,)


class Adder(Module):
    """RNN/LSTM/GRU -> the last hidden state -> Linear(H, 1): one number per sequence."""

    def __init__(self, cell: str, hidden: int, forget_bias: float,
                 rng: np.random.Generator) -> None:
        self.rnn = CELLS[cell](2, hidden, rng=rng)
        if cell == "lstm":  # gate order i, f, g, o: rows H:2H of the bias are f's
            self.rnn.weights[0]["bias_ih"].value[hidden:2 * hidden] += forget_bias
        self.fc = Linear(hidden, 1, rng=rng)
        self.criterion = MSELoss()
        self._T = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, _ = self.rnn.forward(x)  # (T, N, H)
        self._T = x.shape[0]
        return self.fc.forward(y[-1])[:, 0]  # (N,)

    def loss(self, x: np.ndarray, target: np.ndarray) -> float:
        return self.criterion.forward(self.forward(x), target)

    def backward_loss(self) -> None:
        dp = self.criterion.backward()  # (N,)
        dh_last = self.fc.backward(dp[:, None])  # (N, H)
        dy = np.zeros((self._T, *dh_last.shape), dh_last.dtype)  # (T, N, H)
        dy[-1] = dh_last  # only the last step's output is read
        self.rnn.backward(dy)


def train_one(cell: str, T: int, s: dict, seed: int) -> dict:
    """Train one (cell, T) with Adam on fresh batches; its held-out MSE and times."""
    started, cpu = time.perf_counter(), time.process_time()
    x_test, t_test = adding_batch(T, s["test"], np.random.default_rng([seed, T, 1]))
    rng = np.random.default_rng([seed, T, 0])
    model = Adder(cell, s["hidden"], s["forget_bias"], rng)
    opt = Adam(model.named_params(), lr=s["lr"])
    for step in range(1, s["steps"] + 1):
        model.zero_grad()
        loss = model.loss(*adding_batch(T, s["batch"], rng))
        model.backward_loss()
        clip_grad_norm(model.named_params(), 1.0)
        opt.step()
        if step % max(1, s["steps"] // 10) == 0:
            print(f"{cell} T={T} step {step}/{s['steps']}  train MSE {loss:.4f}  "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    mse = float(np.mean((model.forward(x_test) - t_test) ** 2))
    return {"test_mse": round(mse, 4), "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="LSTM at T = 20, under a minute")
    ap.add_argument("--cells", help="comma-separated, from rnn, lstm, gru")
    ap.add_argument("--lengths", help="comma-separated sequence lengths T (each >= 2)")
    ap.add_argument("--steps", type=int, help="training steps per (cell, T)")
    ap.add_argument("--hidden", type=int, help="hidden size")
    ap.add_argument("--forget-bias", type=float, default=1.0,
                    help="added to the LSTM's forget-gate bias at the start (0: PyTorch's init)")
    ap.add_argument("--lr", type=float, help="Adam's learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (1: fastest for these small matrices)")
    a = ap.parse_args()
    s = dict(QUICK if a.quick else FULL, forget_bias=a.forget_bias)
    given = {"cells": a.cells, "lengths": a.lengths, "steps": a.steps, "hidden": a.hidden,
             "lr": a.lr}
    s.update({k: v for k, v in given.items() if v is not None})
    cells = [c.strip() for c in s["cells"].split(",")]
    bad = [c for c in cells if c not in CELLS]
    if bad:
        ap.error(f"unknown cell {bad[0]!r}: use --cells with some of {', '.join(CELLS)}")
    try:
        lengths = [int(v) for v in s["lengths"].split(",")]
    except ValueError:
        ap.error(f"--lengths must be comma-separated integers, got {s['lengths']!r}")
    if min(lengths) < 2 or s["steps"] < 1 or s["hidden"] < 1:
        ap.error("each length must be >= 2, --steps and --hidden >= 1")
    started = time.perf_counter()
    with threadpool_limits(a.threads):
        results = {f"{c}_T{T}": train_one(c, T, s, a.seed) for T in lengths for c in cells}
    print(json.dumps({"task": "adding_problem", "setting": "quick" if a.quick else "full",
                      "steps": s["steps"], "hidden": s["hidden"], "batch": s["batch"],
                      "lr": s["lr"], "forget_bias": s["forget_bias"],
                      "baseline_mse": round(BASELINE, 4), "results": results,
                      "wall_s": round(time.perf_counter() - started, 1)}, sort_keys=True))


if __name__ == "__main__":
    main()

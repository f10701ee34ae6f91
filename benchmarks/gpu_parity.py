"""The parity table of ``gpu.py``: every cell and option on a device against NumPy on the CPU.

Each case builds a layer (or a model) on the CPU from one seed, copies it to the device, runs
both on the same inputs, and reports per tensor ‖device − cpu‖ / ‖cpu‖: the outputs, the
final states, the input and initial-state gradients and every parameter gradient. Limits
(issue 21): float64 1e-10, float32 1e-4; a language model trained 50 steps: SGD 1e-9 / 1e-4
(float64 / float32), Adam 1e-3. The embedding's gradient on the device must also be the
same bits when computed twice (no atomics). With device "cpu" (``--dry-run``) the two sides
are the same code: the errors are 0 and only the table code is exercised.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import numpy as np

from rnnlab import GRU, LSTM, RNN
from rnnlab.models import LanguageModel
from rnnlab.nn import Embedding
from rnnlab.optim import SGD, Adam, clip_grad_norm

TOL = {"float64": 1e-10, "float32": 1e-4}
TRAIN_TOL = {("sgd", "float64"): 1e-9, ("sgd", "float32"): 1e-4,
             ("adam", "float64"): 1e-3, ("adam", "float32"): 1e-3}
T, N, D, H = 7, 4, 5, 8
CELLS: dict[str, tuple[Any, dict[str, Any]]] = {
    "rnn_tanh": (RNN, {}), "rnn_relu": (RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, {}), "lstm_peephole": (LSTM, {"peephole": True}),
    "lstm_forget_bias": (LSTM, {"forget_bias": 1.0}), "gru": (GRU, {}),
    "gru_nobias": (GRU, {"bias": False}),
}
OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {}, "lengths": {"lengths": [7, 3, 0, 5]}, "truncate": {"truncate": 2},
    "bidirectional": {"bidirectional": True, "lengths": [6, 7, 1, 2]},
    "dropout": {"dropout": 0.3}, "cells": {"cells": True},
}


def upload(a: Any, device: str) -> Any:
    if device == "cpu" or a is None:
        return a
    if isinstance(a, tuple):
        return tuple(upload(x, device) for x in a)
    from rnnlab.device import to_device

    return to_device(a, device)


def host(a: Any) -> np.ndarray:
    if isinstance(a, tuple):
        return np.concatenate([host(x).ravel() for x in a])
    if isinstance(a, np.ndarray):
        return a
    from rnnlab.device import to_host

    return to_host(a)


def moved(module: Any, device: str) -> Any:
    """A copy of ``module`` on ``device`` (its random generator copied too: same draws)."""
    twin = copy.deepcopy(module)
    return twin if device == "cpu" else twin.to(device)


def rel(a: Any, b: Any) -> float:
    a, b = host(a).ravel().astype(np.float64), host(b).ravel().astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def run_layer(layer: Any, x: Any, state: Any, lengths: Any, truncate: Any, cells: bool,
              device: str) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    y, final = layer(upload(x, device), upload(state, device), lengths, return_cells=cells)
    shapes = [a.shape for a in (y if cells else (y,))]
    dy = tuple(rng.standard_normal(s).astype(layer.dtype) for s in shapes)
    finals = final if isinstance(final, tuple) else (final,)
    dfinal = tuple(rng.standard_normal(s.shape).astype(layer.dtype) for s in finals)
    dx, dstate0 = layer.backward(upload(dy if cells else dy[0], device),
                                 upload(dfinal if len(dfinal) > 1 else dfinal[0], device),
                                 truncate=truncate)
    out = {"y": y, "final state": final, "dx": dx, "dstate0": dstate0}
    out.update({f"d{n}": p.grad for n, p in layer.named_params().items()})
    return out


def layer_case(cell: str, option: str, dtype: str, device: str) -> dict[str, float] | None:
    cls, kw = CELLS[cell]
    opts = dict(OPTIONS[option])
    if opts.get("cells") and cls is not LSTM:
        return None
    kw = {**kw, "bidirectional": opts.get("bidirectional", False),
          "dropout": opts.get("dropout", 0.0)}
    cpu = cls(D, H, 2, dtype=np.dtype(dtype), rng=np.random.default_rng(0), **kw)
    dev = moved(cpu, device)
    rng = np.random.default_rng(1)
    rows = 4 if kw["bidirectional"] else 2
    x = rng.standard_normal((T, N, D)).astype(dtype)
    state = tuple(rng.standard_normal((rows, N, H)).astype(dtype) for _ in cpu.state_names)
    state = state if len(state) > 1 else state[0]
    lengths = None if "lengths" not in opts else np.array(opts["lengths"])
    args = (x, state, lengths, opts.get("truncate"), opts.get("cells", False))
    want, got = run_layer(cpu, *args, "cpu"), run_layer(dev, *args, device)
    return {name: rel(got[name], w) for name, w in want.items()}


def embedding_case(V: int, dtype: str, device: str) -> dict[str, float]:
    """The embedding's gradient (one-hot matmul at small V, the segment sum at large V)."""
    cpu = Embedding(V, 16, dtype=np.dtype(dtype), rng=np.random.default_rng(0))
    dev = moved(cpu, device)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, size=(35, 20))
    dy = rng.standard_normal((35, 20, 16)).astype(dtype)
    errs = {"y": rel(dev.forward(upload(ids, device)), cpu.forward(ids))}
    cpu.backward(dy)
    dev.backward(upload(dy, device))
    first = host(dev.weight.grad).copy()
    errs["dweight"] = rel(first, cpu.weight.grad)
    dev.weight.grad[...] = 0
    dev.backward(upload(dy, device))
    errs["bits differ when run twice"] = float(not np.array_equal(host(dev.weight.grad), first))
    return errs


def train_case(opt: str, dtype: str, device: str, steps: int = 50) -> dict[str, float]:
    """A 2-layer LSTM language model (dropout 0.2) trained ``steps`` steps on both sides."""
    cpu = LanguageModel(30, cell="lstm", embed_size=16, hidden_size=16, num_layers=2,
                        dropout=0.2, dtype=np.dtype(dtype), rng=np.random.default_rng(0))
    dev = moved(cpu, device)
    ids = np.random.default_rng(1).integers(0, 30, size=(steps + 1) * 10 * 4)
    windows = ids[: steps * 40].reshape(steps, 10, 4), ids[1: steps * 40 + 1].reshape(steps, 10, 4)
    for model, on in ((cpu, "cpu"), (dev, device)):
        params = model.named_params()
        o = SGD(params, lr=1.0) if opt == "sgd" else Adam(params, lr=1e-2)
        state = None
        for s in range(steps):
            _, state = model.loss(upload(windows[0][s], on), upload(windows[1][s], on), state)
            model.zero_grad()
            model.backward_loss()
            clip_grad_norm(params, 0.25)
            o.step()
    want, got = cpu.named_params(), dev.named_params()
    return {f"{n} after {steps} steps": rel(got[n].value, p.value) for n, p in want.items()}


def parity(device: str) -> list[dict[str, Any]]:
    """Every case: a row with the worst tensor, its error and the limit; all errors kept."""
    rows = []
    for dtype in ("float64", "float32"):
        cases: list[tuple[str, str, Any, float]] = []
        for cell in CELLS:
            for option in OPTIONS:
                cases.append((cell, option, partial(layer_case, cell, option, dtype, device),
                              TOL[dtype]))
        for V in (50, 1000):
            cases.append(("embedding", f"V={V}", partial(embedding_case, V, dtype, device),
                          TOL[dtype]))
        for opt in ("sgd", "adam"):
            cases.append(("lm-train", opt, partial(train_case, opt, dtype, device),
                          TRAIN_TOL[(opt, dtype)]))
        for what, option, run, tol in cases:
            try:
                errs = run()
            except Exception as e:  # noqa: BLE001 - the table reports it and goes on
                rows.append({"case": what, "option": option, "dtype": dtype, "tol": tol,
                             "error": f"{type(e).__name__}: {e}".splitlines()[0][:200]})
                continue
            if errs is None:
                continue
            worst = max(errs, key=lambda k: errs[k])
            rows.append({"case": what, "option": option, "dtype": dtype, "tol": tol,
                         "worst": worst, "rel_err": errs[worst], "ok": errs[worst] <= tol,
                         "errors": errs})
    return rows


def parity_table(rows: list[dict[str, Any]], device: str) -> str:
    lines = [f"Parity, {device} against NumPy on the CPU: worst ‖{device} − cpu‖ / ‖cpu‖ "
             "per case", "| case | option | dtype | worst tensor | rel. error | limit | ok |",
             "|---|---|---|---|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['option']} | {r['dtype']} | raised: "
                         f"{r['error']} | - | {r['tol']:.0e} | FAIL |")
        else:
            lines.append(f"| {r['case']} | {r['option']} | {r['dtype']} | {r['worst']} | "
                         f"{r['rel_err']:.1e} | {r['tol']:.0e} | "
                         f"{'yes' if r['ok'] else 'FAIL'} |")
    return "\n".join(lines)

"""The cases behind ``rnnlab gradcheck``: every layer and option, checked in float64.

Each case builds a small layer with random non-zero weights, biases and initial states,
and returns the relative error (see :mod:`rnnlab.nn.gradcheck`) of every parameter and input
gradient. The test suite asserts each is at most 1e-6; the command prints them as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnlab.nn import GRU, LSTM, RNN, Dropout, Embedding, Linear, SoftmaxCrossEntropy
from rnnlab.nn.gradcheck import check_module

T, N, D, H = 4, 3, 3, 4
LENGTHS = np.array([4, 1, 3])


def recurrent_case(
    cls: type, *, num_layers: int = 1, lengths: bool = False, state: bool = True,
    dstate: bool = True, cells: bool = False, dropout: float = 0.0, bias: bool = True,
    **options: Any,
) -> dict[str, float]:
    """Gradient check of one recurrent layer configuration; name -> relative error."""
    rng = np.random.default_rng(0)
    layer = cls(D, H, num_layers, bias=bias, dropout=dropout, dtype=np.float64, rng=rng, **options)
    x = rng.standard_normal((T, N, D))
    inputs = {"x": x}
    state0: Any = None
    if state:
        parts = ("h0", "c0") if layer.has_cell else ("h0",)
        rows = num_layers * (2 if layer.bidirectional else 1)  # (num_layers * directions, N, H)
        inputs.update({p: rng.standard_normal((rows, N, H)) for p in parts})
        state0 = tuple(inputs[p] for p in parts) if layer.has_cell else inputs["h0"]
    lens = LENGTHS if lengths else None

    def forward() -> Any:
        layer.rng = np.random.default_rng(1)  # the same dropout masks at every evaluation
        y, s = layer.forward(x, state0, lens, return_cells=cells)
        return (y, s) if dstate else (y, None)

    def backward(g: Any) -> dict[str, np.ndarray]:
        dx, ds0 = layer.backward(g[0], g[1])
        grads = {"x": dx}
        if state:
            grads.update(zip(("h0", "c0"), ds0, strict=True) if layer.has_cell else [("h0", ds0)])
        return grads

    return check_module(layer, forward, backward, inputs, rng=rng)


def linear_case(*, bias: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    layer = Linear(D, H, bias=bias, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, N, D))
    return check_module(layer, lambda: layer.forward(x), lambda g: {"x": layer.backward(g)},
                        {"x": x}, rng=rng)


def embedding_case() -> dict[str, float]:
    rng = np.random.default_rng(0)
    layer = Embedding(5, H, dtype=np.float64, rng=rng)
    ids = np.array([[0, 3, 3], [4, 0, 1]])  # repeated ids must accumulate

    def backward(g: np.ndarray) -> dict[str, np.ndarray]:
        layer.backward(g)  # returns None: integer ids have no gradient to check
        return {}

    return check_module(layer, lambda: layer.forward(ids), backward, {}, rng=rng)


def dropout_case() -> dict[str, float]:
    rng = np.random.default_rng(0)
    layer = Dropout(0.5, rng=rng)
    x = rng.standard_normal((T, N, D))
    mask = layer.sample_mask(x.shape, np.float64)
    return check_module(layer, lambda: layer.forward(x, mask), lambda g: {"x": layer.backward(g)},
                        {"x": x}, rng=rng)


def cross_entropy_case(*, ignore: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    loss = SoftmaxCrossEntropy(ignore_index=0 if ignore else None)
    logits = 3 * rng.standard_normal((T, N, 7))
    targets = rng.integers(0, 7, size=(T, N))
    return check_module(loss, lambda: loss.forward(logits, targets),
                        lambda g: {"logits": loss.backward(g)}, {"logits": logits}, rng=rng)


def cases() -> dict[str, Callable[[], dict[str, float]]]:
    """Case name -> function returning {array name: relative error}."""
    out: dict[str, Callable[[], dict[str, float]]] = {
        "Linear": _bind(linear_case, bias=True),
        "Linear, no bias": _bind(linear_case, bias=False),
        "Embedding": embedding_case,
        "Dropout (fixed mask)": dropout_case,
        "SoftmaxCrossEntropy": _bind(cross_entropy_case, ignore=False),
        "SoftmaxCrossEntropy, ignore_index": _bind(cross_entropy_case, ignore=True),
    }
    cells: list[tuple[str, type, dict[str, Any]]] = [
        ("RNN tanh", RNN, {}), ("RNN relu", RNN, {"nonlinearity": "relu"}),
        ("LSTM", LSTM, {}), ("LSTM peephole", LSTM, {"peephole": True}), ("GRU", GRU, {}),
    ]
    variants: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("no bias", {"bias": False}),
        ("2 layers", {"num_layers": 2}),
        ("lengths", {"lengths": True, "num_layers": 2}),
        ("zero initial state", {"state": False}),
        ("no final-state grad", {"dstate": False}),
        ("dropout (fixed mask)", {"num_layers": 2, "dropout": 0.5}),
        ("bidirectional", {"bidirectional": True}),
        ("bidirectional, 2 layers, lengths", {"bidirectional": True, "num_layers": 2,
                                              "lengths": True}),
        ("bidirectional, dropout (fixed mask)", {"bidirectional": True, "num_layers": 2,
                                                 "dropout": 0.5}),
    ]
    for cname, cls, opts in cells:
        for vname, vopts in variants:
            label = f"{cname}, {vname}" if vname else cname
            out[label] = _bind(recurrent_case, cls, **opts, **vopts)
        if cls is LSTM:
            out[f"{cname}, return cells, lengths"] = _bind(
                recurrent_case, cls, **opts, cells=True, lengths=True, num_layers=2)
            out[f"{cname}, bidirectional, return cells, lengths"] = _bind(
                recurrent_case, cls, **opts, cells=True, lengths=True, num_layers=2,
                bidirectional=True)
    return out


def _bind(fn: Callable[..., dict[str, float]], *args: Any, **kwargs: Any
          ) -> Callable[[], dict[str, float]]:
    return lambda: fn(*args, **kwargs)

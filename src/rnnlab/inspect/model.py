"""From a language model and a text to the plain arrays the rest of :mod:`rnnlab.inspect` takes.

The glue between a :class:`rnnlab.models.LanguageModel` and the array functions: it runs the
model (in eval mode: no dropout) and reads what the recurrent layer shows through its public
methods (``states``, ``gate_values``, ``state_grads``; see :class:`rnnlab.nn.Recurrent`).
Shapes, with L layers, T steps, N windows, H cells, V the vocabulary::

    windows(ids, steps, count)        -> (T, N) inputs, (N,) the target after each window
    state_grad_norms(model, x, y)     -> {label: (T,)}  ||dL/dh|| (and dL/dc) by distance k
    read_text(model, ids)             -> probs (T, V), {"h": (L, T, H)[, "c"]}, gates
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.inspect.gradient_flow import norms_by_distance
from rnnlab.models import LanguageModel

CHUNK = 256  # steps per forward when reading a long text (the state is carried)


def windows(ids: np.ndarray, steps: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` windows of ``steps`` tokens, evenly spaced over ``ids``: inputs (T, N) and
    the next token after each window (N,), the target of the loss at the last step."""
    ids = np.asarray(ids)
    last = ids.size - steps - 1  # the latest start with a target after the window
    if last < 0:
        raise ValueError(f"the text has {ids.size} tokens: too short for windows of {steps} "
                         "steps plus a target")
    starts = np.linspace(0, last, num=count).astype(np.int64)  # (N,)
    x = ids[starts[None, :] + np.arange(steps)[:, None]]  # (T, N)
    return x, ids[starts + steps]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def state_grad_norms(model: LanguageModel, x: np.ndarray, targets: np.ndarray,
                     label: str) -> dict[str, np.ndarray]:
    """For a loss at the last step only (mean cross-entropy of the N targets), the norm of
    dL/dh_t per layer by distance k = T-1-t (:func:`norms_by_distance`), and for an LSTM the
    norm of dL/dc_t counting its path through h_t = o tanh(c_t) as well::

        dL/dc_t = dc_t + dL/dh_t * o_t * (1 - tanh^2(c_t))   dc_t: state_grads()["c"]

    Labels: ``"<label> h"`` (``"<label> h layer k"`` with several layers), ``"... c"``.
    Adds into the model's parameter gradients (zeroed first).
    """
    model.eval()
    logits, _ = model.forward(x)  # (T, N, V)
    dlogits = np.zeros_like(logits)
    p = softmax(logits[-1])  # (N, V)
    p[np.arange(p.shape[0]), targets] -= 1.0
    dlogits[-1] = p / p.shape[0]  # d mean_n(-log p_n[target]) / d logits at the last step
    model.zero_grad()
    model.backward(dlogits, keep_state_grads=True)
    grads = model.rnn.state_grads()  # {"h": (L, T, N, H)[, "c": ...]}
    L = grads["h"].shape[0]
    if "c" in grads:
        c = model.rnn.states()["c"].astype(np.float64)  # (L, T, N, H)
        o = np.stack([g["o"] for g in model.rnn.gate_values()])  # (L, T, N, H)
        grads["c"] = grads["c"] + grads["h"] * o * (1 - np.tanh(c) ** 2)
    curves = {}
    for k in range(L):
        suffix = f" layer {k}" if L > 1 else ""
        for name, g in grads.items():
            curves[f"{label} {name}{suffix}"] = norms_by_distance(g[k])  # (T,)
    return curves


def read_text(model: LanguageModel, ids: np.ndarray, *, gates: bool = False
              ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Run the model over ``ids`` (T,) as one stream, ``CHUNK`` steps at a time, state carried.

    Returns the next-token probabilities after each token (T, V) float64, every layer's
    states {"h": (L, T, H)[, "c": ...]} and, with ``gates`` (LSTM, GRU), per layer
    {gate: (T, 1, H)} (else an empty list).
    """
    model.eval()
    state: Any = None
    probs, states, gate_parts = [], [], []
    for start in range(0, len(ids), CHUNK):
        chunk = np.asarray(ids[start:start + CHUNK]).reshape(-1, 1)  # (T', 1)
        logits, state = model.forward(chunk, state)
        probs.append(softmax(logits[:, 0]))
        states.append({n: s[:, :, 0] for n, s in model.rnn.states().items()})  # (L, T', H)
        if gates:
            gate_parts.append(model.rnn.gate_values())
    joined = {n: np.concatenate([s[n] for s in states], axis=1) for n in states[0]}
    gate_values = [{g: np.concatenate([part[k][g] for part in gate_parts], axis=0)
                    for g in gate_parts[0][k]} for k in range(len(gate_parts[0]))] if gates else []
    return np.concatenate(probs), joined, gate_values

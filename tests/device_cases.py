"""One forward and backward of every layer and model, on any device: the cases the device
tests run on "cpu" and on another device and compare (tests/test_device_layers.py on the
fake CuPy, tests/test_gpu_parity.py on a real GPU).

``run(case, device, dtype)`` builds the case from seed 0 on ``device`` (inputs drawn on the
host by NumPy, uploaded where a layer expects device arrays; models take NumPy inputs),
runs it, and returns ``{name: array as produced}``: outputs, final states, every
parameter's gradient and the input gradients. ``compare`` turns two such results into
per-tensor relative errors ||a - b|| / ||b||.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnlab.device import to_device, to_host
from rnnlab.models import (
    ConditionedGenerator,
    LanguageModel,
    Seq2Seq,
    SequenceClassifier,
    SequenceTagger,
)
from rnnlab.models.generate import sample
from rnnlab.nn import GRU, LSTM, RNN, Dropout, Embedding, Linear, SoftmaxCrossEntropy
from rnnlab.nn.attention import Attention

T, N, D, H = 5, 3, 4, 6
Result = dict[str, Any]


def _grads(prefix: str, module: Any, out: Result) -> None:
    for name, p in module.named_params().items():
        out[f"{prefix}grad.{name}"] = p.grad


def _flat(name: str, value: Any, out: Result) -> None:
    """out[name] = value; a tuple (a state (h, c)) as name.0, name.1."""
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            _flat(f"{name}.{i}", v, out)
    elif value is not None:
        out[name] = value


def recurrent(cls: type, device: str, dtype: Any, *, layers: int = 2, lengths: bool = False,
              bidirectional: bool = False, dropout: float = 0.0, state: bool = False,
              truncate: int | None = None, rows: bool = False, **kw: Any) -> Result:
    """A recurrent layer: forward (or forward_rows) and backward, with the options given."""
    rng = np.random.default_rng(1)
    layer = cls(D, H, layers, bidirectional=bidirectional, dropout=dropout, dtype=dtype,
                device=device, rng=np.random.default_rng(0), **kw)
    dirs = 2 if bidirectional else 1
    names = ("h", "c") if layer.has_cell else ("h",)
    s0 = tuple(rng.standard_normal((layers * dirs, N, H)).astype(dtype) for _ in names)
    s0_dev = tuple(to_device(s, device) for s in s0) if state else None
    s0_arg = None if s0_dev is None else (s0_dev if layer.has_cell else s0_dev[0])
    L = np.array([T, 2, 4]) if lengths else None
    out: Result = {}
    if rows:
        table = to_device(rng.standard_normal((7, layer.gates * H)).astype(dtype), device)
        ids = rng.integers(0, 7, (T, N))
        y, sT = layer.forward_rows(table, ids, s0_arg)
    else:
        x = to_device(rng.standard_normal((T, N, D)).astype(dtype), device)
        y, sT = layer.forward(x, s0_arg, L)
    dy = to_device(rng.standard_normal(y.shape).astype(dtype), device)
    dsT = tuple(to_device(rng.standard_normal(s.shape).astype(dtype), device) for s in s0)
    dsT_arg = dsT if layer.has_cell else dsT[0]
    if rows:
        dx, ds0 = layer.backward_rows(dy, dsT_arg, truncate=truncate)
    else:
        dx, ds0 = layer.backward(dy, dsT_arg, truncate=truncate)
    _flat("y", y, out)
    _flat("state", sT, out)
    _flat("dx", dx, out)
    _flat("dstate0", ds0, out)
    _grads("", layer, out)
    return out


def small_layers(device: str, dtype: Any) -> Result:
    """Linear, Embedding, Dropout, the loss and attention (dot, additive) in one chain."""
    rng, init = np.random.default_rng(1), np.random.default_rng(0)
    out: Result = {}
    fc = Linear(D, H, dtype=dtype, device=device, rng=init)
    emb = Embedding(9, D, dtype=dtype, device=device, rng=init)
    drop = Dropout(0.3, device=device, rng=np.random.default_rng(5))
    ids = rng.integers(0, 9, (T, N))
    e = drop.forward(emb.forward(ids))  # (T, N, D)
    y = fc.forward(e)  # (T, N, H)
    for score in ("dot", "additive"):
        attn = Attention(H, score, key_size=H, dtype=dtype, device=device, rng=init)
        keys = to_device(rng.standard_normal((4, N, H)).astype(dtype), device)
        c, a = attn.forward(y, keys, lengths=np.array([4, 1, 3]))
        dq, dk = attn.backward(to_device(rng.standard_normal(c.shape).astype(dtype), device))
        out.update({f"{score}.context": c, f"{score}.weights": a, f"{score}.dq": dq,
                    f"{score}.dk": dk})
        _grads(f"{score}.", attn, out)
    crit = SoftmaxCrossEntropy(ignore_index=2, device=device)
    targets = rng.integers(0, H, (T, N))
    mask = rng.random((T, N)) < 0.8
    loss = crit.forward(y, targets, mask)
    dlogits = crit.backward(0.5)
    emb.backward(drop.backward(fc.backward(dlogits)))
    out.update({"e": e, "y": y, "dlogits": dlogits, "loss": to_host(loss)})
    _grads("fc.", fc, out)
    _grads("emb.", emb, out)
    return out


def language_model(device: str, dtype: Any, *, vocab: int = 7, **kw: Any) -> Result:
    """One training step's forward and backward of a LanguageModel, carried state, samples."""
    rng = np.random.default_rng(1)
    model = LanguageModel(vocab, embed_size=H, hidden_size=H, num_layers=2, dtype=dtype,
                          device=device, rng=np.random.default_rng(0), **kw)
    ids, targets = rng.integers(0, vocab, (T, N)), rng.integers(0, vocab, (T, N))
    loss, state = model.loss(ids, targets)
    model.backward_loss()
    out: Result = {"loss": to_host(loss)}
    _flat("state", state, out)
    logits, _ = model(ids, state)  # the state carried into the next window
    out["logits"] = logits
    _grads("", model, out)
    out["sample"] = np.array(list(sample(model, [1, 2], 6, rng=np.random.default_rng(3))))
    return out


def classifier(device: str, dtype: Any, **kw: Any) -> Result:
    rng = np.random.default_rng(1)
    model = SequenceClassifier(3, 9, embed_size=D, hidden_size=H, num_layers=2, dtype=dtype,
                               device=device, rng=np.random.default_rng(0), **kw)
    x, lengths = rng.integers(0, 9, (T, N)), np.array([5, 2, 3])
    loss = model.loss(x, rng.integers(0, 3, N), lengths)
    model.backward_loss()
    out: Result = {"loss": to_host(loss), "predict": model.predict(x, lengths),
                   "proba": model.predict_proba(x, lengths)}
    _grads("", model, out)
    return out


def classifier_real_inputs(device: str, dtype: Any) -> Result:
    rng = np.random.default_rng(1)
    model = SequenceClassifier(3, input_size=D, hidden_size=H, pooling="mean", dtype=dtype,
                               device=device, rng=np.random.default_rng(0))
    x = rng.standard_normal((T, N, D)).astype(dtype)
    logits = model.forward(x, np.array([5, 1, 4]))
    dx = model.backward(to_device(rng.standard_normal(logits.shape).astype(dtype), device))
    out: Result = {"logits": logits, "dx": dx}
    _grads("", model, out)
    return out


def tagger(device: str, dtype: Any) -> Result:
    rng = np.random.default_rng(1)
    model = SequenceTagger(4, 9, embed_size=D, hidden_size=H, bidirectional=True, dropout=0.2,
                           dtype=dtype, device=device, rng=np.random.default_rng(0))
    x, lengths = rng.integers(0, 9, (T, N)), np.array([5, 2, 3])
    loss = model.loss(x, rng.integers(0, 4, (T, N)), lengths)
    model.backward_loss()
    out: Result = {"loss": to_host(loss), "predict": model.eval().predict(x, lengths)}
    _grads("", model, out)
    return out


def seq2seq(device: str, dtype: Any, **kw: Any) -> Result:
    rng = np.random.default_rng(1)
    model = Seq2Seq(8, 9, embed_size=D, hidden_size=H, dtype=dtype, device=device,
                    rng=np.random.default_rng(0), **kw)
    src, sl = rng.integers(2, 8, (4, N)), np.array([4, 2, 3])
    tin, tout = rng.integers(0, 9, (T, N)), rng.integers(0, 9, (T, N))
    loss = model.loss(src, sl, tin, tout, np.array([5, 3, 1]))
    model.backward_loss()
    out: Result = {"loss": to_host(loss)}
    _grads("", model, out)
    greedy = model.greedy(src, sl, bos_id=0, eos_id=1, max_length=4)
    beam = model.beam_search(src, sl, bos_id=0, eos_id=1, max_length=4, beam_size=3)
    for name, dec in (("greedy", greedy), ("beam", beam)):
        out[f"{name}.log_probs"] = dec.log_probs
        for n, tokens in enumerate(dec.tokens):
            out[f"{name}.tokens.{n}"] = tokens
    return out


def conditioned(device: str, dtype: Any) -> Result:
    rng = np.random.default_rng(1)
    model = ConditionedGenerator(9, 3, embed_size=D, hidden_size=H, num_layers=2, dtype=dtype,
                                 device=device, rng=np.random.default_rng(0))
    f = rng.standard_normal((N, 3)).astype(dtype)
    loss = model.loss(f, rng.integers(0, 9, (T, N)), rng.integers(0, 9, (T, N)),
                      np.array([5, 2, 3]))
    df = model.backward_loss()
    out: Result = {"loss": to_host(loss), "dfeatures": df}
    _grads("", model, out)
    dec = model.generate(f, 4, 0, 1, greedy=False, rng=np.random.default_rng(2))
    out["sampled.log_probs"] = dec.log_probs
    return out


CASES: dict[str, Callable[[str, Any], Result]] = {
    "rnn-tanh": lambda d, t: recurrent(RNN, d, t, state=True),
    "rnn-relu-lengths": lambda d, t: recurrent(RNN, d, t, lengths=True, nonlinearity="relu"),
    "lstm": lambda d, t: recurrent(LSTM, d, t, state=True),
    "lstm-peephole-forget-bias": lambda d, t: recurrent(LSTM, d, t, lengths=True,
                                                        peephole=True, forget_bias=1.0),
    "lstm-bidirectional": lambda d, t: recurrent(LSTM, d, t, bidirectional=True, lengths=True),
    "lstm-dropout": lambda d, t: recurrent(LSTM, d, t, layers=3, dropout=0.4),
    "lstm-truncate": lambda d, t: recurrent(LSTM, d, t, truncate=2, state=True),
    "lstm-rows": lambda d, t: recurrent(LSTM, d, t, rows=True),
    "gru": lambda d, t: recurrent(GRU, d, t, state=True, lengths=True),
    "gru-bidirectional-dropout": lambda d, t: recurrent(GRU, d, t, bidirectional=True,
                                                        dropout=0.3),
    "gru-truncate-1-layer": lambda d, t: recurrent(GRU, d, t, layers=1, truncate=1),
    "rnn-rows-truncate": lambda d, t: recurrent(RNN, d, t, rows=True, truncate=2),
    "linear-embedding-dropout-loss-attention": small_layers,
    "lm-lstm-table": lambda d, t: language_model(d, t),  # V <= 2E: the fused table
    "lm-gru-embedding-dropout": lambda d, t: language_model(d, t, vocab=300, cell="gru",
                                                            dropout=0.3),
    "lm-rnn-tied": lambda d, t: language_model(d, t, vocab=20, cell="rnn", tie_weights=True,
                                               init_range=0.1),
    "classifier-bidirectional": lambda d, t: classifier(d, t, bidirectional=True),
    "classifier-cell-dropout": lambda d, t: classifier(d, t, pooling="cell", dropout=0.3),
    "classifier-real-inputs-mean": classifier_real_inputs,
    "tagger": tagger,
    "seq2seq-attention-peeky": lambda d, t: seq2seq(d, t, attention="additive", peeky=True),
    "seq2seq-bidirectional-dot": lambda d, t: seq2seq(d, t, cell="gru", attention="dot",
                                                      bidirectional=True, reverse_source=True),
    "conditioned": conditioned,
}


def compare(got: Result, want: Result) -> dict[str, float]:
    """Per tensor ||got - want|| / ||want|| (absolute when want is all zeros), on the host."""
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))
    errors = {}
    for name, w in want.items():
        g, w = to_host(got[name]).astype(np.float64), to_host(w).astype(np.float64)
        assert g.shape == w.shape, f"{name}: shape {g.shape} vs {w.shape}"
        scale = float(np.linalg.norm(w))
        errors[name] = float(np.linalg.norm(g - w)) / (scale if scale > 0 else 1.0)
    return errors

"""The graphs of rnnlab's models: the language model, the classifier and the tagger.

Language model (T and N dynamic, L layers, H hidden, V the vocabulary)::

    ids (T, N) int64, h0 (L, N, H) [, c0 (L, N, H)]
    x      = Gather(W_emb, ids)                       (T, N, E)
    y, h_n = LSTM | GRU | RNN per layer (_graph.py)   (T, N, H), (L, N, H) [, c_n]
    logits = MatMul(y, W_dec^T) + b_dec               (T, N, V)  tied: Transpose(W_emb)

Feeding ``h_n`` (and ``c_n``) back as the next call's ``h0`` (``c0``) with one token
(T = 1) generates token by token. Classifier and tagger (zero initial state)::

    ids (T, N) int64 [or x (T, N, D) real inputs], lengths (N,) int64
    y, h_n = the stack over the lengths               (T, N, dirs*H), zero past each end
    z      = top layer's h_n (or c_n) per direction, or sum_t y / lengths   (N, dirs*H)
    logits = z W^T + b  (classifier, (N, C))   or   y W^T + b  (tagger, (T, N, C))
"""

from __future__ import annotations

from typing import Any

from rnnlab.onnx._graph import Graph, recurrent

INT64 = 7  # onnx.TensorProto.INT64, without importing onnx here


def language_model(model: Any) -> Graph:
    g = Graph(model.dtype)
    L, H = model.rnn.num_layers, model.rnn.hidden_size
    ids = g.input("ids", ["T", "N"], INT64)
    h0 = g.input("h0", [L, "N", H])
    c0 = g.input("c0", [L, "N", H]) if model.rnn.has_cell else ""
    emb = g.init("embedding.weight", model.embedding.weight.value)
    x = g.op("Gather", [emb, ids], axis=0)  # (T, N, E)
    y, hs, cs = recurrent(g, model.rnn, x, "rnn", h0=h0, c0=c0)
    logits = g.linear(y, model.decoder, "decoder", weight=emb if model.tie_weights else None)
    g.output(logits, "logits", ["T", "N", model.vocab_size])
    for name, parts in (("h_n", hs), ("c_n", cs)):
        if parts:
            g.output(_concat(g, parts), name, [L, "N", H])
    return g


def _concat(g: Graph, parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=0)


def _encode(g: Graph, model: Any) -> tuple[str, str, list[str], list[str]]:
    """Inputs ``ids`` (or ``x``) and ``lengths``; the stack's y, lengths, final h and c."""
    if model.embedding is None:
        x = g.input("x", ["T", "N", model.input_size])
    else:
        ids = g.input("ids", ["T", "N"], INT64)
        x = g.op("Gather", [g.init("embedding.weight", model.embedding.weight.value), ids],
                 axis=0)
    lengths = g.input("lengths", ["N"], INT64)
    y, hs, cs = recurrent(g, model.rnn, x, "rnn", lengths=g.op("Cast", [lengths], to=6))
    return y, lengths, hs, cs  # Cast to=6: int32, what ONNX's sequence_lens takes


def classifier(model: Any) -> Graph:
    g = Graph(model.dtype)
    y, lengths, hs, cs = _encode(g, model)
    if model.pooling == "mean":  # sum_t y / lengths: y is zero past each length
        total = g.op("ReduceSum", [y, g.ints(0)], keepdims=0)  # (N, dirs*H)
        z = g.op("Div", [total, g.op("Unsqueeze", [g.op("Cast", [lengths], to=g.elem),
                                                    g.ints(1)])])
    else:  # the top layer's (dirs, N, H) -> (N, dirs*H), directions side by side
        top = (cs if model.pooling == "cell" else hs)[-1]
        z = g.op("Reshape", [g.op("Transpose", [top], perm=[1, 0, 2]), g.ints(0, -1)])
    g.output(g.linear(z, model.fc, "fc"), "logits", ["N", model.num_classes])
    return g


def tagger(model: Any) -> Graph:
    g = Graph(model.dtype)
    y, _, _, _ = _encode(g, model)
    g.output(g.linear(y, model.fc, "fc"), "logits", ["T", "N", model.num_tags])
    return g
